"""OSCAL assessment-results for a time window: one result per window, one observation per check
result that held in it, one finding per control.

A finding is `satisfied` when the control's status was `pass` (or `not_applicable`) at every
instant of the window at which its state could change (the window's ends and every sealed run
in between); otherwise `not-satisfied`, with the reason `fail` when it failed and `other` when it
was unknown, stale or manual. The exact Annexa statuses travel as props.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key
from checks.registry import REGISTRY
from collector.access_log import SOURCE as ACCESS_SOURCE
from collector.chain import RUNS
from collector.interchange import WindowResult, check_controls, instants, results_in_window
from collector.posture import control_states
from collector.schema import now

OSCAL_VERSION = "1.2.1"
NS = "urn:annexa:oscal"
_UUIDS = uuid.UUID("4d1c8f5e-5b0e-4c53-9d6a-2f1a4b0c7e11")  # namespace of our uuid5 ids
# Worst first: the status a control reports for a window is the worst it had in it.
_RANK = ("fail", "unknown", "stale", "manual", "pass", "not_applicable")
SATISFIED = ("pass", "not_applicable")


def annexa_version() -> str:
    try:
        return version("annexa")
    except PackageNotFoundError:
        return "0+unknown"


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(_UUIDS, "\x1f".join(str(p) for p in parts)))


def _prop(name: str, value: object) -> dict[str, str] | None:
    # OSCAL prop values are one line without outer whitespace.
    text = " ".join(str(value).split())
    return {"name": name, "ns": NS, "value": text} if text else None


def _props(**values: object) -> list[dict[str, str]]:
    return [p for name, v in values.items() if (p := _prop(name.replace("_", "-"), v))]


def _ts(value: datetime) -> str:
    return value.isoformat()


def assessment_results(conn: Connection, start: datetime, end: datetime, freshness: timedelta,
                       only: list[str] | None = None) -> dict[str, Any]:
    selected = sorted(only or catalogue(), key=sort_key)
    observations, by_check = _observations(conn, start, end, freshness, check_controls(only))
    findings = _findings(conn, start, end, freshness, selected, by_check)
    head = conn.execute(sa.select(RUNS.c.seq, RUNS.c.chain_hash).where(
        RUNS.c.seq.is_not(None), RUNS.c.finished_at <= end)
        .order_by(RUNS.c.seq.desc()).limit(1)).first()
    plan = _uuid("plan", "annexa-continuous")
    result: dict[str, Any] = {
        "uuid": _uuid("result", start.isoformat(), end.isoformat(), *selected),
        "title": f"Annex A posture from {_ts(start)} to {_ts(end)}",
        "description": (
            "Automated checks run by Annexa on every scheduled collection. Each observation is "
            "one check result that held during the window; each finding is one Annex A control, "
            "satisfied only if it passed throughout the window."),
        "start": _ts(start),
        "end": _ts(end),
        "props": _props(ledger_seq=head.seq if head else "", ledger_chain_hash=head.chain_hash
                        if head else "") or None,
        "reviewed-controls": {"control-selections": [
            {"include-controls": [{"control-id": cid} for cid in selected]}]},
        "observations": observations or None,
        "findings": findings,
    }
    return {"assessment-results": {
        "uuid": str(uuid.uuid4()),
        "metadata": {
            "title": f"ISO/IEC 27001:2022 Annex A assessment results, {_ts(start)} to {_ts(end)}",
            "last-modified": _ts(now()),
            "version": annexa_version(),
            "oscal-version": OSCAL_VERSION,
        },
        "import-ap": {"href": f"#{plan}", "remarks": "Annexa's standing plan: every registered "
                      "check on every scheduled collection (see back-matter)."},
        "results": [{k: v for k, v in result.items() if v is not None}],
        "back-matter": {"resources": [{
            "uuid": plan,
            "title": "Annexa continuous assessment plan",
            "description": (
                "Connectors collect configuration on a schedule; every registered check judges "
                "it; every result is sealed into a signed hash chain. `annexa checks` lists the "
                "checks and the controls each one supports."),
        }]},
    }}


def _observations(conn: Connection, start: datetime, end: datetime, freshness: timedelta,
                  checks: set[str] | None) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    out: list[dict[str, Any]] = []
    by_check: dict[str, list[str]] = defaultdict(list)
    for r in results_in_window(conn, start, end, checks):
        obs = observation(r, freshness)
        out.append(obs)
        by_check[r.check_id].append(obs["uuid"])
    return out, by_check


def observation(r: WindowResult, freshness: timedelta) -> dict[str, Any]:
    chk = REGISTRY.get(r.check_id)
    obs: dict[str, Any] = {
        "uuid": _uuid("observation", r.source, r.id),
        "title": " ".join(f"{r.check_id} on {r.subject}".split()),
        "description": r.reason or r.status,
        "props": _props(check_id=r.check_id, result=r.status, resource=r.subject,
                        resource_kind=r.kind, region=r.region, source=r.source,
                        severity=chk.severity if chk else "",
                        controls=" ".join(sorted(chk.controls)) if chk else "",
                        result_digest=r.result_digest),
        "methods": ["TEST"],
        "collected": _ts(r.collected),
        "expires": _ts(r.collected + freshness),
    }
    if r.evidence:
        obs["relevant-evidence"] = [{
            "href": f"/evidence/{d}",
            "description": "The resource configuration as collected: canonical JSON whose "
                           f"SHA-256 is {d}.",
            "props": _props(sha256=d),
        } for d in r.evidence]
    return obs


def _findings(conn: Connection, start: datetime, end: datetime, freshness: timedelta,
              selected: list[str], by_check: dict[str, list[str]]) -> list[dict[str, Any]]:
    seen: dict[str, list[str]] = defaultdict(list)
    final: dict[str, str] = {}
    for at in instants(conn, start, end, skip={ACCESS_SOURCE}):
        for state in control_states(conn, at, freshness, selected):
            seen[state.id].append(state.status)
            final[state.id] = state.status
    known = catalogue()
    out = []
    for cid in selected:
        statuses = seen[cid]
        worst = min(statuses, key=_RANK.index)
        failing = sum(1 for s in statuses if s not in SATISFIED)
        state = "satisfied" if worst in SATISFIED else "not-satisfied"
        reason = "pass" if state == "satisfied" else ("fail" if worst == "fail" else "other")
        related = sorted({u for cid2, chk in REGISTRY.items() if cid in chk.controls
                          for u in by_check.get(cid2, [])})
        finding: dict[str, Any] = {
            "uuid": _uuid("finding", start.isoformat(), end.isoformat(), cid),
            "title": f"{cid} {known[cid].title}",
            "description": (
                f"Worst status in the window: {worst}; at its end: {final[cid]}. Not passing at "
                f"{failing} of the {len(statuses)} instants evaluated (the window's ends and "
                "every sealed run in between)."),
            "props": _props(annexa_status=worst, status_at_end=final[cid],
                            theme=known[cid].theme),
            "target": {"type": "objective-id", "target-id": cid,
                       "status": {"state": state, "reason": reason}},
        }
        if related:
            finding["related-observations"] = [{"observation-uuid": u} for u in related]
        out.append(finding)
    return out
