"""Annexa's metrics, dashboards and alert rules against a real Prometheus.

A real Prometheus (Debian package `prometheus`, installed by .ci/run) scrapes the Annexa service
on loopback, with the shipped alert rules loaded. The service collects an empty organisation in
the moto server, then the seeded sample organisation; then every PromQL expression of the
dashboards and the rules is evaluated through Prometheus's HTTP API and compared with what the
database says. Two later phases make evidence stale and break the ledger, and watch the alerts
fire in Prometheus itself.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import yaml
from prometheus_client.parser import text_string_to_metric_families

from checks.catalogue import controls as catalogue
from checks.registry import REGISTRY, load_all
from collector import config as configuration
from collector import migrate
from collector.chain import RUNS
from collector.db import engine_for
from collector.demo.seed import seed_all
from collector.ledger import load_or_create_signer
from collector.metrics import CONTROL_STATUSES, RUN_STATUSES, Metrics, schedule_interval
from collector.pipeline import RunOutcome, collect_source
from collector.posture import control_states
from collector.schema import now
from collector.service import Service
from collector.store import BLOBS, RESULTS
from tests.helpers import REGIONS, emulator_client, write_config

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = ROOT / "config" / "prometheus"
# The rule files that the shipped scrape config loads, relative to it.
RULE_FILES = [PROMETHEUS_DIR / name for name in yaml.safe_load(
    (PROMETHEUS_DIR / "prometheus.yml").read_text(encoding="utf-8"))["rule_files"]]
DASHBOARDS = ROOT / "config" / "grafana" / "dashboards"
SOURCE = "aws-test"
# What Grafana would put in place of the dashboards' variables.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$source": ".*"}
JUDGED = ("pass", "fail", "stale", "unknown")
WAIT = 60.0  # seconds that any one condition may take to show in Prometheus


# ---------------------------------------------------------------------------- the expressions

@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    ref: str
    expr: str
    range: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dashboard, self.panel, self.ref

    @property
    def promql(self) -> str:
        return substitute(self.expr)


def substitute(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a dashboard variable this test does not know: {expr}"
    return expr


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def panel_targets() -> list[Target]:
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(board["panels"]):
            for target in panel.get("targets", []):
                out.append(Target(board["uid"], panel["title"], target["refId"], target["expr"],
                                  bool(target.get("range"))))
    return out


def tiles(theme: str) -> dict[str, str]:
    """What a tile of the theme's status grid shows for each value: its value mappings."""
    board = json.loads((DASHBOARDS / "annexa-posture.json").read_text(encoding="utf-8"))
    [panel] = [p for p in board["panels"] if p["title"].startswith(f"{theme} controls (")]
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    return {value: shown["text"] for value, shown in mapping["options"].items()}


def alert_rules() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for path in RULE_FILES
            for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
            for rule in group["rules"]}


# ------------------------------------------------------------------------------ what is true

@dataclass
class Truth:
    """What the database and the service's own /metrics say, to compare Prometheus with."""

    before: dict[str, str]  # control -> status after the first collection
    after: dict[str, str]  # control -> status now
    checks: dict[str, dict[str, int]]  # check -> result status -> resources
    evidence: set[tuple[str, str]]  # (control, source) with evidence
    outcomes: list[RunOutcome]
    last_seconds: float  # wall time of the last sealed run, from the database
    blobs: tuple[int, int, int]  # count, canonical bytes, stored bytes
    exposed: dict[str, set[tuple[str, ...]]]  # label sets of the service's own counters

    def counts(self) -> dict[tuple[str, ...], float]:
        got = Counter(self.after.values())
        return {(status,): got.get(status, 0) for status in CONTROL_STATUSES}

    def ratio(self, theme: str | None = None) -> float:
        chosen = [s for c, s in self.after.items()
                  if theme is None or catalogue()[c].theme == theme]
        judged = [s for s in chosen if s in JUDGED]
        return sum(s == "pass" for s in judged) / len(judged)

    def themes_judged(self) -> dict[tuple[str, ...], float]:
        themes = {catalogue()[c].theme for c, s in self.after.items() if s in JUDGED}
        return {(theme,): self.ratio(theme) for theme in themes}

    def grid(self, theme: str) -> dict[tuple[str, ...], float]:
        code = {text.replace(" ", "_"): float(value) for value, text in tiles(theme).items()}
        return {(c,): code[s] for c, s in self.after.items()
                if catalogue()[c].theme == theme}

    def check_counts(self, status: str) -> dict[tuple[str, ...], float]:
        return {(check,): n[status] for check, n in self.checks.items() if n.get(status)}

    def by_source_kind(self) -> dict[tuple[str, ...], float]:
        out: Counter[tuple[str, ...]] = Counter()
        for check, n in self.checks.items():
            for status in ("pass", "fail", "error"):
                out[(REGISTRY[check].provider, status)] += n.get(status, 0)
        return dict(out)

    def failing_checks_by_source_kind(self) -> dict[tuple[str, ...], float]:
        return dict(Counter((REGISTRY[c].provider,) for c, n in self.checks.items()
                            if n.get("fail")))

    def newly_failing(self) -> set[tuple[str, ...]]:
        return {(c,) for c, s in self.after.items() if s == "fail" and self.before[c] != "fail"}

    def with_status(self, status: str) -> set[tuple[str, ...]]:
        return {(c,) for c, s in self.after.items() if s == status}


Sample = tuple[dict[str, str], float]
Expect = Callable[[list[Sample], Truth], None]


def values(*labels: str, of: Callable[[Truth], dict[tuple[str, ...], float]]) -> Expect:
    def expect(result: list[Sample], truth: Truth) -> None:
        got = {tuple(m[label] for label in labels): v for m, v in result}
        want = of(truth)
        assert got.keys() == want.keys()
        for key, value in want.items():
            assert got[key] == pytest.approx(value), key
    return expect


def series(*labels: str, of: Callable[[Truth], set[tuple[str, ...]]],
           value: Callable[[float], bool] = lambda v: True) -> Expect:
    def expect(result: list[Sample], truth: Truth) -> None:
        assert {tuple(m[label] for label in labels) for m, _ in result} == of(truth)
        assert all(value(v) for _, v in result), result
    return expect


def one(value: Callable[[float, Truth], bool]) -> Expect:
    def expect(result: list[Sample], truth: Truth) -> None:
        assert len(result) == 1, result
        assert value(result[0][1], truth), result
    return expect


def nothing(result: list[Sample], truth: Truth) -> None:
    assert result == []


def recent(v: float) -> bool:
    return 0 <= v < 600


FROM_SOURCE = {(SOURCE,)}

# Every query of every dashboard panel, by (dashboard uid, panel title, refId).
PANELS: dict[tuple[str, str, str], Expect] = {
    ("annexa-posture", "Controls by status", "A"): values("status", of=Truth.counts),
    ("annexa-posture", "Pass ratio", "A"): one(lambda v, t: v == pytest.approx(t.ratio())),
    ("annexa-posture", "Failing resources", "A"):
        one(lambda v, t: v > 0 and v == sum(n.get("fail", 0) for n in t.checks.values())),
    **{("annexa-posture", f"{theme} controls ({count})", "A"):
       values("control", of=lambda t, theme=theme: t.grid(theme))
       for theme, count in Counter(c.theme for c in catalogue().values()).items()},
    ("annexa-posture", "Pass ratio over time", "A"): values("theme", of=Truth.themes_judged),
    ("annexa-posture", "Pass ratio over time", "B"):
        one(lambda v, t: v == pytest.approx(t.ratio())),
    ("annexa-posture", "Controls by status over time", "A"): values("status", of=Truth.counts),
    ("annexa-posture", "Failing checks", "A"):
        values("check", of=lambda t: t.check_counts("fail")),
    ("annexa-posture", "Posture by source kind", "A"):
        values("source_kind", "status", of=Truth.by_source_kind),
    ("annexa-posture", "Failing checks by source kind", "A"):
        values("source_kind", of=Truth.failing_checks_by_source_kind),
    ("annexa-posture", "Checks that could not judge", "A"):
        values("check", of=lambda t: t.check_counts("error")),
    ("annexa-posture", "Stale controls", "A"):
        series("control", of=lambda t: t.with_status("stale")),
    ("annexa-posture", "Evidence age by source", "A"):
        series("source", of=lambda t: FROM_SOURCE, value=recent),
    ("annexa-posture", "Evidence age by source", "B"):
        one(lambda v, t: v == timedelta(hours=48).total_seconds()),
    ("annexa-posture", "Evidence age per control", "A"):
        series("control", "source", of=lambda t: t.evidence, value=recent),
    ("annexa-collector", "Collector", "A"): one(lambda v, t: v == 1),
    ("annexa-collector", "Since last successful collection", "A"):
        series("source", of=lambda t: FROM_SOURCE, value=recent),
    ("annexa-collector", "Schedule", "A"): values("source", of=lambda t: {(SOURCE,): 3600}),
    ("annexa-collector", "Last collection", "A"):
        series("source", "status", of=lambda t: {(SOURCE, t.outcomes[-1].status)}),
    ("annexa-collector", "Collection duration", "A"):
        values("source", of=lambda t: {(SOURCE,): t.last_seconds}),
    ("annexa-collector", "Collections by outcome", "A"):
        series("source", "status", of=lambda t: {(SOURCE, s) for s in RUN_STATUSES}),
    ("annexa-collector", "Collection errors by service", "A"):
        series("source", "service", of=lambda t: t.exposed["collection errors"]),
    ("annexa-collector", "API requests by service", "A"):
        series("source", "service", of=lambda t: t.exposed["api requests"]),
    ("annexa-collector", "API error responses", "A"):
        series("source", "service", "code", of=lambda t: t.exposed["api error responses"]),
    ("annexa-collector", "Throttling and retries", "A"):
        series("source", "service", of=lambda t: t.exposed["api retries"]),
    ("annexa-collector", "Memory", "A"): one(lambda v, t: v > 1e6),
    ("annexa-collector", "CPU", "A"): one(lambda v, t: v >= 0),
    ("annexa-ledger", "Ledger verification", "A"): one(lambda v, t: v == 1),
    ("annexa-ledger", "Since last verification", "A"): one(lambda v, t: recent(v)),
    ("annexa-ledger", "Verification time", "A"): one(lambda v, t: 0 <= v < 60),
    ("annexa-ledger", "Sealed runs", "A"): one(lambda v, t: v == len(t.outcomes)),
    ("annexa-ledger", "Sealed runs by source", "A"):
        values("source", of=lambda t: {(SOURCE,): len(t.outcomes)}),
    ("annexa-ledger", "Sealed runs by outcome", "A"): values("status", of=lambda t: {
        (status,): n for status, n in Counter(o.status for o in t.outcomes).items()}),
    ("annexa-ledger", "Evidence stored", "A"): one(lambda v, t: v == t.blobs[2]),
    ("annexa-ledger", "Evidence stored", "B"): one(lambda v, t: v == t.blobs[1]),
    ("annexa-ledger", "Evidence blobs", "A"): one(lambda v, t: v == t.blobs[0] > 0),
    # The store grew between the two collections, both within the last 6 hours.
    ("annexa-ledger", "Storage growth", "A"): one(lambda v, t: v > 0),
}

# Every alert rule, evaluated while everything is healthy.
HEALTHY: dict[str, Expect] = {
    "AnnexaControlNewlyFailing": series("control", of=Truth.newly_failing),
    "AnnexaEvidenceStale": nothing,
    "AnnexaSourceOverdue": nothing,
    "AnnexaSourceNeverCollected": nothing,
    "AnnexaCollectorDown": nothing,
    "AnnexaCollectorAbsent": nothing,
    "AnnexaLedgerVerifyFailed": nothing,
    "AnnexaLedgerHeadRewound": nothing,
    "AnnexaLedgerNotVerified": nothing,
    # No attestation is recorded here: these evaluate, and find nothing due.
    "AnnexaAttestationReviewDueSoon": nothing,
    "AnnexaAttestationOverdue": nothing,
}
# Metrics that this scenario leaves without series (nothing to report), by design.
ABSENT_HERE = {"annexa_attestation_review_due_timestamp_seconds"}


# ------------------------------------------------------------------------------- the servers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y prometheus (.ci/run does)")
    return path


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        data = self._get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return [({k: v for k, v in item["metric"].items()}, float(item["value"][1]))
                for item in data["result"]]

    def query_range(self, expr: str, seconds: int) -> list[dict[str, Any]]:
        end = time.time()
        return self._get("/api/v1/query_range", query=expr, start=end - seconds, end=end,
                         step="1s")["result"]

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self._get("/api/v1/rules")["groups"]
                for rule in group["rules"]]

    def firing(self, alert: str) -> list[dict[str, str]]:
        return [a["labels"] for a in self._get("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == alert and a["state"] == "firing"]

    def label_values(self, label: str, match: str) -> list[str]:
        return self._get(f"/api/v1/label/{label}/values", **{"match[]": match})

    def eventually(self, expr: str, expect: Callable[[list[Sample]], None]) -> None:
        """Poll until `expect` accepts the result (scrapes and rule evaluations take a few
        seconds to show); past WAIT, fail with the last result."""
        deadline = time.monotonic() + WAIT
        while True:
            result = self.query(expr)
            try:
                expect(result)
                return
            except AssertionError as exc:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{expr}\n  returned {result}\n  {exc}") from None
            time.sleep(0.5)

    def wait_firing(self, alert: str, want: set[tuple[str, ...]], *labels: str) -> None:
        deadline = time.monotonic() + WAIT
        while True:
            got = {tuple(a[label] for label in labels) for a in self.firing(alert)}
            if got == want:
                return
            assert time.monotonic() < deadline, f"{alert} firing for {got}, expected {want}"
            time.sleep(0.5)


@dataclass
class Stack:
    prometheus: Prometheus
    service: Service
    truth: Truth
    phase: str = "collected"


def _status_now(engine: sa.Engine, freshness: timedelta) -> dict[str, str]:
    with engine.connect() as conn:
        return {c.id: c.status for c in control_states(conn, now(), freshness)}


def _exposed(metrics_url: str) -> dict[str, set[tuple[str, ...]]]:
    """Label sets of the service's counters, as its own /metrics shows them."""
    text = requests.get(metrics_url, timeout=10).text
    families = {f.name: f for f in text_string_to_metric_families(text)}

    def labels(name: str, *keys: str, keep: Callable[[dict[str, str]], bool] = lambda _: True,
               ) -> set[tuple[str, ...]]:
        return {tuple(s.labels[k] for k in keys) for s in families[name].samples
                if s.name.endswith("_total") and keep(s.labels)}

    return {
        "collection errors": labels("annexa_collection_errors", "source", "service"),
        "api requests": labels("annexa_api_requests", "source", "service"),
        "api error responses": labels("annexa_api_requests", "source", "service", "code",
                                      keep=lambda m: not m["code"].startswith("2")),
        "api retries": labels("annexa_api_retries", "source", "service"),
    }


def _truth(engine: sa.Engine, cfg: configuration.Config, before: dict[str, str],
           outcomes: list[RunOutcome], metrics_url: str) -> Truth:
    with engine.connect() as conn:
        states = control_states(conn, now(), cfg.freshness_window)
        started, finished = conn.execute(sa.select(RUNS.c.started_at, RUNS.c.finished_at)
                                         .order_by(RUNS.c.seq.desc()).limit(1)).one()
        bodies = [(size, body) for size, body in conn.execute(
            sa.select(BLOBS.c.size, BLOBS.c.body))]
    checks = {chk.check.id: dict(chk.counts) for c in states for chk in c.checks}
    return Truth(
        before=before, after={c.id: c.status for c in states}, checks=checks,
        evidence={(c.id, SOURCE) for c in states if c.evidence_at},
        outcomes=list(outcomes),
        last_seconds=(finished - started).total_seconds(),
        blobs=(len(bodies), sum(size for size, _ in bodies),
               sum(len(body) for _, body in bodies if body is not None)),
        exposed=_exposed(metrics_url))


@pytest.fixture(scope="module")
def stack(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = _binary("prometheus")
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    tmp = tmp_path_factory.mktemp("prometheus")
    path = write_config(tmp, f"sqlite:///{tmp / 'annexa.db'}", moto_server)
    cfg = configuration.load(str(path))
    port = _free_port()
    cfg = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"port": port}),
                                 "api": cfg.api.model_copy(update={"port": 0})})
    migrate.upgrade(engine_for(cfg.database, check_schema=False))
    load_all()
    engine = engine_for(cfg.database)

    prom_port = _free_port()
    (tmp / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [{"job_name": "annexa",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }))
    log = (tmp / "prometheus.log").open("w")
    server = subprocess.Popen(
        [prometheus_bin, f"--config.file={tmp / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://127.0.0.1:{prom_port}")

    outcomes: list[RunOutcome] = []
    collected = threading.Event()

    def on_run(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        collected.set()

    service = Service(cfg, engine, load_or_create_signer(cfg.signing_key), on_run=on_run)
    thread = threading.Thread(target=service.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        _wait_ready(prometheus, server, tmp / "prometheus.log")
        # Phase 1: the empty organisation, seen by Prometheus.
        assert collected.wait(120), "the service ran no collection at start"
        before = _status_now(engine, cfg.freshness_window)
        prometheus.eventually("annexa_control_status == 1", lambda r: _statuses_are(r, before))
        # Phase 2: the sample organisation with its planted gaps.
        seed_all(emulator_client(moto_server), REGIONS)
        service.collect(cfg.sources[0])
        after = _status_now(engine, cfg.freshness_window)
        prometheus.eventually("annexa_control_status == 1", lambda r: _statuses_are(r, after))
        prometheus.eventually("sum(annexa_ledger_sealed_runs)",
                              lambda r: _one_value(r, len(outcomes)))
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        yield Stack(prometheus, service, _truth(engine, cfg, before, outcomes, metrics_url))
    finally:
        service.stop.set()
        thread.join(60)
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()
        # Leave the shared emulator as empty as the next test expects it.
        requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    assert not thread.is_alive()


def _wait_ready(prometheus: Prometheus, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prometheus exited:\n{log.read_text()[-3000:]}"
        try:
            if requests.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prometheus not ready:\n{log.read_text()[-3000:]}")


def _statuses_are(result: list[Sample], statuses: dict[str, str]) -> None:
    assert {m["control"]: m["status"] for m, _ in result} == statuses


def _one_value(result: list[Sample], value: float) -> None:
    assert [v for _, v in result] == [value]


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:annexa|process)_[a-z_]+|up)\b(?!\s*\()", expr))


# ------------------------------------------------------------------------------------ tests

def test_every_panel_query_and_alert_rule_is_evaluated() -> None:
    """The expectations below cover exactly the dashboards' queries and the rules."""
    assert {t.key for t in panel_targets()} == set(PANELS)
    assert set(alert_rules()) == set(HEALTHY)
    assert len(panel_targets()) == len(PANELS), "two targets share a panel title and refId"


def test_dashboard_queries_return_the_posture_from_the_database(stack: Stack) -> None:
    assert stack.phase == "collected", "run this module's tests in file order"
    for target in panel_targets():
        for name in _metric_names(target.promql):
            assert stack.prometheus.query(f"count({name})"), f"{target.key}: no {name} series"
        expect = PANELS[target.key]
        stack.prometheus.eventually(target.promql, lambda r, e=expect: e(r, stack.truth))
        if target.range:
            assert stack.prometheus.query_range(target.promql, 120), target.key
    sources = stack.prometheus.label_values(
        "source", "annexa_source_schedule_interval_seconds")
    assert sources == [SOURCE]


def test_alert_expressions_in_a_healthy_state(stack: Stack) -> None:
    assert stack.phase == "collected", "run this module's tests in file order"
    assert stack.truth.newly_failing(), "the seeded organisation should add failing controls"
    for alert, expr in alert_rules().items():
        for name in _metric_names(expr) - ABSENT_HERE:
            assert stack.prometheus.query(f"count({name})"), f"{alert}: no {name} series"
        expect = HEALTHY[alert]
        stack.prometheus.eventually(expr, lambda r, e=expect: e(r, stack.truth))
    stack.prometheus.wait_firing("AnnexaControlNewlyFailing", stack.truth.newly_failing(),
                                 "control")


def test_prometheus_loads_and_evaluates_every_rule(stack: Stack) -> None:
    rules = {r["name"]: r for r in stack.prometheus.rules()}
    assert set(rules) == set(alert_rules())
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))


def test_stale_evidence_shows_on_the_dashboard_and_alerts(stack: Stack) -> None:
    assert stack.phase == "collected", "run this module's tests in file order"
    stack.phase = "stale"
    # A one-second window makes all evidence stale without waiting for the real one (48h).
    window = timedelta(seconds=1)
    time.sleep(1.5)
    engine = stack.service.engine
    stack.service.metrics.refresh_posture(engine, window)
    stale = {(c,) for c, s in _status_now(engine, window).items() if s == "stale"}
    assert stale, "the passing and not-applicable controls should turn stale"
    [target] = [t for t in panel_targets() if t.key[1] == "Stale controls"]
    stack.prometheus.eventually(target.promql, lambda r: series("control", of=lambda t: stale)(
        r, stack.truth))
    expr = alert_rules()["AnnexaEvidenceStale"]
    older = series("source", of=lambda t: FROM_SOURCE, value=lambda v: v > window.seconds)
    stack.prometheus.eventually(expr, lambda r: older(r, stack.truth))
    stack.prometheus.wait_firing("AnnexaEvidenceStale", FROM_SOURCE, "source")


def test_a_broken_ledger_fails_verification_and_alerts(stack: Stack) -> None:
    assert stack.phase in ("collected", "stale"), "run this module's tests in file order"
    stack.phase = "broken"
    engine = stack.service.engine
    with engine.begin() as conn:
        first = conn.scalar(sa.select(sa.func.min(RESULTS.c.id)))
        conn.execute(RESULTS.update().where(RESULTS.c.id == first).values(reason="tampered"))
    report = stack.service.verify_ledger()
    assert not report.ok
    expr = alert_rules()["AnnexaLedgerVerifyFailed"]
    stack.prometheus.eventually(expr, lambda r: _one_value(r, 0))
    stack.prometheus.wait_firing("AnnexaLedgerVerifyFailed", {("annexa",)}, "job")
    [target] = [t for t in panel_targets() if t.key[1] == "Ledger verification"]
    stack.prometheus.eventually(target.promql, lambda r: _one_value(r, 0))
    assert not math.isnan(stack.prometheus.query(
        "annexa_ledger_last_verify_timestamp_seconds")[0][1])


def test_database_gauges_match_the_store_on_each_backend(tmp_path: Path, database_url: str,
                                                        moto_url: str) -> None:
    client = emulator_client(moto_url)
    client("kms", "us-east-1").create_key(Description="no rotation")
    cfg = configuration.load(str(write_config(tmp_path, database_url, moto_url,
                                              regions=["us-east-1"])))
    migrate.upgrade(engine_for(cfg.database, check_schema=False))
    load_all()
    engine = engine_for(cfg.database)
    metrics = Metrics()
    metrics.refresh_posture(engine, cfg.freshness_window)
    assert metrics.registry.get_sample_value(
        "annexa_control_status", {"control": "A.8.24", "theme": "Technological",
                                  "title": "Use of cryptography", "status": "unknown"}) is None
    outcome = collect_source(engine, cfg.sources[0], load_or_create_signer(cfg.signing_key))
    metrics.refresh_posture(engine, cfg.freshness_window)

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    with engine.connect() as conn:
        bodies = list(conn.execute(sa.select(BLOBS.c.size, BLOBS.c.body)))
        run = conn.execute(sa.select(RUNS).where(RUNS.c.id == outcome.run_id)).one()
    assert value("annexa_evidence_blobs") == len(bodies) > 0
    assert value("annexa_evidence_blob_bytes") == sum(size for size, _ in bodies)
    assert value("annexa_evidence_stored_bytes") == sum(len(body) for _, body in bodies)
    assert value("annexa_ledger_sealed_runs", source=SOURCE, status=outcome.status) == 1
    assert value("annexa_collection_last_status", source=SOURCE, status=outcome.status) == 1
    assert value("annexa_collection_last_duration_seconds", source=SOURCE) == pytest.approx(
        (run.finished_at - run.started_at).total_seconds())
    assert value("annexa_collection_last_success_timestamp_seconds", source=SOURCE) == \
        pytest.approx(run.finished_at.timestamp())
    assert value("annexa_evidence_freshness_window_seconds") == 48 * 3600
    age = value("annexa_evidence_age_seconds", source=SOURCE, control="A.8.24")
    assert age is not None and 0 <= age < 600
    assert value("annexa_control_status", control="A.8.24", theme="Technological",
                 title="Use of cryptography", status="fail") == 1


@pytest.mark.parametrize(("schedule", "hours"), [
    ("6h", 6), ("90m", 1.5), ("0 */6 * * *", 6), ("*/15 * * * *", 0.25),
    ("0 9 * * 1-5", 72),  # weekdays: the weekend is the longest gap
    ("0 0 1 * *", 31 * 24),  # monthly: the longest month
])
def test_schedule_interval_is_the_longest_gap_between_collections(schedule: str,
                                                                  hours: float) -> None:
    assert schedule_interval(schedule) == timedelta(hours=hours)


# ------------------------------------------------------------------------- promtool checks

def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_binary("promtool"), *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_promtool_accepts_the_scrape_config_and_the_rules() -> None:
    done = _promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in done.stdout
    done = _promtool("check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr


UNIT_TESTS = sorted(PROMETHEUS_DIR.glob("*.test.yml"))


def test_every_alert_rule_has_a_firing_and_a_quiet_unit_test() -> None:
    cases = [case for path in UNIT_TESTS for test in yaml.safe_load(path.read_text())["tests"]
             for case in test["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert fires == quiet == set(alert_rules())


@pytest.mark.parametrize("unit_tests", UNIT_TESTS, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(unit_tests: Path) -> None:
    done = subprocess.run([_binary("promtool"), "test", "rules", unit_tests.name],
                          cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
