"""Generates Annexa's Grafana dashboards with the Grafana Foundation SDK.

Edit this file, then run `python config/grafana/generate.py` from the repository root: it
rewrites config/grafana/dashboards/*.json. A test checks that the committed JSON is exactly what
this file generates, and the Prometheus integration test evaluates every query below against a
real Prometheus scraping a real Annexa.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from checks.catalogue import controls  # noqa: E402  (the catalogue decides the themes)

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Control statuses as numbers for the status grid, and how each is shown.
STATUS_CODES = {"pass": 1, "fail": 2, "stale": 3, "unknown": 4, "manual": 5,
                "not_applicable": 6}
STATUS_COLORS = {"pass": "green", "fail": "red", "stale": "orange", "unknown": "purple",
                 "manual": "blue", "not_applicable": "text"}
# Controls that automated checks judge; manual and not applicable ones are left out of ratios.
JUDGED = 'status=~"pass|fail|stale|unknown"'
SOURCE_STATUSES = 'status=~"pass|fail|error"'
PASS_RATIO = (f'sum(annexa_control_status{{status="pass"}}) '
              f'/ sum(annexa_control_status{{{JUDGED}}})')


def status_code(theme: str) -> str:
    """One series per control of `theme` whose value is its status code (exactly one of the
    control's status series is 1, so the weighted sum is the code)."""
    terms = [f'{code} * sum without (status) '
             f'(annexa_control_status{{theme="{theme}", status="{status}"}})'
             for status, code in STATUS_CODES.items()]
    return "\n+ ".join(terms)


def query(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False,
          as_table: bool = False) -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DATASOURCE)
    q = q.instant() if instant else q.range()
    return q.format(PromQueryFormat.TABLE) if as_table else q


def mapping(values: dict[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={
        value: dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, (text, color)) in enumerate(values.items())})]


def status_mappings() -> list[dm.ValueMapping]:
    return mapping({str(code): (status.replace("_", " "), STATUS_COLORS[status])
                    for status, code in STATUS_CODES.items()})


def base_thresholds() -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=None, color="text")])


def color_by_name(panel: stat.Panel | timeseries.Panel, colors: dict[str, str]) -> None:
    for name, color in colors.items():
        panel.override_by_name(name, [dm.DynamicConfigValue(
            id_val="color", value={"mode": "fixed", "fixedColor": color})])


def single_stat(title: str, description: str, target: prometheus.Dataquery, *, width: int,
                unit: str = "none", height: int = 4) -> stat.Panel:
    return (stat.Panel().title(title).description(description).with_target(target)
            .datasource(DATASOURCE).unit(unit).span(width).height(height)
            .graph_mode(common.BigValueGraphMode.NONE)
            .color_mode(common.BigValueColorMode.NONE)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
            .thresholds(base_thresholds()))


def graph(title: str, description: str, targets: list[prometheus.Dataquery], *, width: int,
          unit: str = "none", height: int = 8, bars: bool = False) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).targets(targets)
             .datasource(DATASOURCE).unit(unit).span(width).height(height)
             .line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
             .legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    return panel


def listing(title: str, description: str, target: prometheus.Dataquery, *, width: int,
            columns: dict[str, str], height: int = 8, unit: str = "none") -> table.Panel:
    """A table of an instant query's series, showing `columns` (label -> header) in order."""
    keep = list(columns)
    return (table.Panel().title(title).description(description).with_target(target)
            .datasource(DATASOURCE).span(width).height(height).unit(unit)
            .with_transformation(dm.DataTransformerConfig(
                id_val="filterFieldsByName", options={"include": {"names": keep}}))
            .with_transformation(dm.DataTransformerConfig(
                id_val="organize", options={
                    "indexByName": {name: i for i, name in enumerate(keep)},
                    "renameByName": columns})))


def new_dashboard(uid: str, title: str, description: str, tags: list[str]) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(["annexa", *tags])
            .editable().refresh("1m").time("now-24h", "now").timezone("utc")
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .with_variable(db.DatasourceVariable("datasource").label("Prometheus")
                           .type("prometheus")))


def themes() -> list[str]:
    seen: dict[str, None] = {}
    for control in controls().values():
        seen.setdefault(control.theme, None)
    return list(seen)


def posture() -> db.Dashboard:
    d = new_dashboard("annexa-posture", "Annex A posture",
                      "ISO/IEC 27001:2022 Annex A control status from Annexa's evidence.",
                      ["iso27001"])
    d.with_row(db.Row("Now"))
    by_status = single_stat(
        "Controls by status", "How many of the 93 Annex A controls are in each status.",
        query("sum by (status) (annexa_control_status)", "{{status}}", instant=True),
        width=12, height=5)
    by_status.text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    color_by_name(by_status, STATUS_COLORS)
    d.with_panel(by_status.color_mode(common.BigValueColorMode.VALUE))
    d.with_panel(single_stat(
        "Pass ratio", "Passing controls among those that automated checks judge (pass, fail, "
        "stale or unknown).", query(PASS_RATIO, "pass ratio", instant=True),
        width=6, height=5, unit="percentunit").decimals(1))
    d.with_panel(single_stat(
        "Failing resources", "Resources that fail at least one check (counted once per check).",
        query('sum(annexa_check_resources{status="fail"})', "failing", instant=True),
        width=6, height=5))

    d.with_row(db.Row("Status grid"))
    per_theme = {theme: sum(1 for c in controls().values() if c.theme == theme)
                 for theme in themes()}
    for theme, count in per_theme.items():
        d.with_panel(
            stat.Panel().title(f"{theme} controls ({count})")
            .description(f"Each tile is one {theme.lower()} control and its "
                         "current status; `annexa controls --control ID` explains it.")
            .with_target(query(status_code(theme), "{{control}}", instant=True))
            .datasource(DATASOURCE).span(24).height(2 + 2 * -(-count // 12))
            .mappings(status_mappings()).thresholds(base_thresholds())
            .graph_mode(common.BigValueGraphMode.NONE)
            .color_mode(common.BigValueColorMode.BACKGROUND)
            .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
            .justify_mode(common.BigValueJustifyMode.CENTER)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])))

    d.with_row(db.Row("Over time"))
    ratio = graph(
        "Pass ratio over time", "Share of judged controls that pass, by theme and overall.",
        [query(f'sum by (theme) (annexa_control_status{{status="pass"}})\n'
               f'/ (sum by (theme) (annexa_control_status{{{JUDGED}}}) > 0)', "{{theme}}"),
         query(PASS_RATIO, "all themes", "B")], width=12, unit="percentunit")
    d.with_panel(ratio.min(0).max(1))
    over_time = graph("Controls by status over time", "Controls in each status.",
                      [query("sum by (status) (annexa_control_status)", "{{status}}")],
                      width=12)
    color_by_name(over_time, STATUS_COLORS)
    d.with_panel(over_time.stacking(cb.StackingConfig().mode(common.StackingMode.NORMAL)))

    d.with_row(db.Row("By source kind"))
    d.with_panel(listing(
        "Posture by source kind", "Per kind of source (aws, azure, entra, people, ...): "
        "resources failing, in error and passing, summed over its checks. A new connector's "
        "checks appear here by themselves.",
        query(f"sum by (source_kind, status) (annexa_check_resources{{{SOURCE_STATUSES}}})",
              instant=True, as_table=True),
        width=12, height=8, columns={"source_kind": "Source kind", "status": "Result",
                                     "Value": "Resources"}))
    d.with_panel(graph(
        "Failing checks by source kind", "Checks that fail on at least one resource, per kind "
        "of source.",
        [query('count by (source_kind) (annexa_check_resources{status="fail"} > 0)',
               "{{source_kind}}")], width=12, height=8))

    d.with_row(db.Row("Failing checks"))
    d.with_panel(listing(
        "Failing checks", "Checks that fail on at least one resource, with how many. "
        "`annexa controls --format json` lists the resources and the evidence behind each.",
        query('sort_desc(annexa_check_resources{status="fail"} > 0)', instant=True,
              as_table=True),
        width=14, height=10, columns={"check": "Check", "source_kind": "Source kind",
                                      "severity": "Severity", "Value": "Failing resources"}))
    d.with_panel(listing(
        "Checks that could not judge", "Checks with results in error: a service was denied "
        "or failed, so the check could not decide.",
        query('sort_desc(annexa_check_resources{status="error"} > 0)', instant=True,
              as_table=True),
        width=10, height=10, columns={"check": "Check", "severity": "Severity",
                                      "Value": "Resources in error"}))

    d.with_row(db.Row("Evidence freshness"))
    d.with_panel(listing(
        "Stale controls", "Controls whose newest evidence is older than the freshness window.",
        query('annexa_control_status{status="stale"} == 1', instant=True, as_table=True),
        width=8, columns={"control": "Control", "title": "Title", "theme": "Theme"}))
    d.with_panel(graph(
        "Evidence age by source", "Age of the newest evidence from each source, against "
        "the freshness window.",
        [query("max by (source) (annexa_evidence_age_seconds)", "{{source}}"),
         query("annexa_evidence_freshness_window_seconds", "freshness window", "B")],
        width=8, unit="s"))
    d.with_panel(listing(
        "Evidence age per control", "Age of the newest evidence each control rests on, per "
        "source; oldest first.",
        query("sort_desc(annexa_evidence_age_seconds)", instant=True, as_table=True),
        width=8, unit="s",
        columns={"control": "Control", "source": "Source", "Value": "Evidence age"}))
    return d


def collector() -> db.Dashboard:
    d = new_dashboard("annexa-collector", "Collector health",
                      "Annexa's scheduled collections: runs, durations, errors, API calls and "
                      "throttling per source.", ["collector"])
    d.with_variable(
        db.QueryVariable("source").label("Source").datasource(DATASOURCE)
        .query("label_values(annexa_source_schedule_interval_seconds, source)")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(True).include_all(True)
        .all_value(".*").current(dm.VariableOption(text="All", value="$__all", selected=True)))
    sel = '{source=~"$source"}'

    d.with_row(db.Row("Sources"))
    d.with_panel(single_stat(
        "Collector", "Whether Prometheus can scrape Annexa's /metrics.",
        query('up{job="annexa"}', "{{instance}}", instant=True), width=4)
        .mappings(mapping({"1": ("up", "green"), "0": ("DOWN", "red")}))
        .color_mode(common.BigValueColorMode.BACKGROUND))
    d.with_panel(single_stat(
        "Since last successful collection", "Time since each source's last collection that "
        "completed (possibly with service errors).",
        query(f"time() - annexa_collection_last_success_timestamp_seconds{sel}", "{{source}}",
              instant=True), width=10, unit="s")
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME))
    d.with_panel(single_stat(
        "Schedule", "Longest time between two scheduled collections of each source.",
        query(f"annexa_source_schedule_interval_seconds{sel}", "{{source}}", instant=True),
        width=10, unit="s").text_mode(common.BigValueTextMode.VALUE_AND_NAME))
    d.with_panel(listing(
        "Last collection", "Outcome and wall time of each source's last sealed collection.",
        query(f"annexa_collection_last_status{sel} == 1", instant=True, as_table=True),
        width=12, height=6, columns={"source": "Source", "status": "Outcome"}))
    d.with_panel(graph(
        "Collection duration", "Wall time of each source's last sealed collection.",
        [query(f"annexa_collection_last_duration_seconds{sel}", "{{source}}")],
        width=12, height=6, unit="s"))

    d.with_row(db.Row("Runs and errors"))
    d.with_panel(graph(
        "Collections by outcome", "Collections run by this service, by source and outcome.",
        [query(f"sum by (source, status) "
               f"(increase(annexa_collection_runs_total{sel}[$__rate_interval]))",
               "{{source}} {{status}}")], width=12, bars=True))
    d.with_panel(graph(
        "Collection errors by service", "Services or regions that could not be read "
        "(service=\"source\": the whole collection failed).",
        [query(f"sum by (source, service) "
               f"(increase(annexa_collection_errors_total{sel}[$__rate_interval]))",
               "{{source}} {{service}}")], width=12, bars=True))

    d.with_row(db.Row("Provider APIs"))
    d.with_panel(graph(
        "API requests by service", "Provider API calls per second, by source and service.",
        [query(f"sum by (source, service) "
               f"(rate(annexa_api_requests_total{sel}[$__rate_interval]))",
               "{{source}} {{service}}")], width=8, unit="reqps"))
    d.with_panel(graph(
        "API error responses", "Provider API calls answered with a non-2xx HTTP status.",
        [query('sum by (source, service, code) (rate(annexa_api_requests_total'
               '{source=~"$source", code!~"2.."}[$__rate_interval]))',
               "{{source}} {{service}} {{code}}")], width=8, unit="reqps"))
    d.with_panel(graph(
        "Throttling and retries", "Retries of provider API calls: throttling (the SDKs slow "
        "down adaptively) or transient errors.",
        [query(f"sum by (source, service) "
               f"(rate(annexa_api_retries_total{sel}[$__rate_interval]))",
               "{{source}} {{service}}")], width=8, unit="reqps"))

    d.with_row(db.Row("Process"))
    d.with_panel(graph(
        "Memory", "Resident memory of the Annexa process.",
        [query('process_resident_memory_bytes{job="annexa"}', "{{instance}}")],
        width=12, unit="bytes"))
    d.with_panel(graph(
        "CPU", "CPU time used by the Annexa process, in cores.",
        [query('rate(process_cpu_seconds_total{job="annexa"}[$__rate_interval])',
               "{{instance}}")], width=12, unit="none"))
    return d


def ledger() -> db.Dashboard:
    d = new_dashboard("annexa-ledger", "Evidence ledger",
                      "Sealed runs, the service's periodic ledger verification, and the "
                      "evidence store's growth.", ["ledger"])
    d.with_row(db.Row("Integrity"))
    d.with_panel(single_stat(
        "Ledger verification", "Result of the service's last full verification of every "
        "digest, Merkle root, chain link and signature (`annexa verify` names the first "
        "broken record).", query("annexa_ledger_verify_ok", "ledger", instant=True), width=6)
        .mappings(mapping({"1": ("intact", "green"), "0": ("BROKEN", "red")}))
        .color_mode(common.BigValueColorMode.BACKGROUND))
    d.with_panel(single_stat(
        "Since last verification", "Time since the service last finished verifying the "
        "ledger (it verifies at start and daily).",
        query("time() - annexa_ledger_last_verify_timestamp_seconds", "age", instant=True),
        width=6, unit="s"))
    d.with_panel(single_stat(
        "Verification time", "Wall time of the last full ledger verification.",
        query("annexa_ledger_verify_duration_seconds", "duration", instant=True),
        width=6, unit="s"))
    d.with_panel(single_stat(
        "Sealed runs", "Runs sealed into the hash chain, all sources and outcomes.",
        query("sum(annexa_ledger_sealed_runs)", "runs", instant=True), width=6))

    d.with_row(db.Row("Runs"))
    d.with_panel(graph(
        "Sealed runs by source", "Runs in the chain, by source.",
        [query("sum by (source) (annexa_ledger_sealed_runs)", "{{source}}")], width=12))
    d.with_panel(graph(
        "Sealed runs by outcome", "Runs in the chain, by outcome (complete, partial, failed, "
        "interrupted).",
        [query("sum by (status) (annexa_ledger_sealed_runs)", "{{status}}")], width=12))

    d.with_row(db.Row("Storage"))
    d.with_panel(graph(
        "Evidence stored", "Evidence blob bodies as stored (compressed) and as canonical JSON.",
        [query("annexa_evidence_stored_bytes", "stored (compressed)"),
         query("annexa_evidence_blob_bytes", "canonical JSON", "B")], width=12, unit="bytes"))
    d.with_panel(graph(
        "Evidence blobs", "Distinct evidence contents stored (one blob per digest).",
        [query("annexa_evidence_blobs", "blobs")], width=6))
    d.with_panel(single_stat(
        "Storage growth", "Growth of the stored evidence per day, from the last 6 hours' trend.",
        query("deriv(annexa_evidence_stored_bytes[6h]) * 86400", "per day", instant=True),
        width=6, height=8, unit="bytes"))
    return d


DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "annexa-posture.json": posture, "annexa-collector.json": collector,
    "annexa-ledger.json": ledger}


def render() -> dict[str, str]:
    """File name -> JSON text, with panel ids numbered in order so that output is stable."""
    out = {}
    for name, build in DASHBOARDS.items():
        data = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        for number, panel in enumerate(data["panels"], start=1):
            panel["id"] = number
        out[name] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
