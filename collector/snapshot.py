"""What was true at one instant, with the evidence to show for it: the auditor's snapshot.

A snapshot at instant T takes, per source, the last sealed run that had finished by T (the same
run `annexa controls --at T` uses), and reports per control its status, each mapped check with
every result valid at that run (subject, status, reason, evidence digests), the failing
resources, and the resource versions valid at that run that the results rest on (the subjects
of the checks and the resources named in their evidence).

The cost is a fixed number of queries per source, whatever the length of the history: each
reads the rows valid at one run through the (source, valid_from_run) and
(source, valid_to_run) indexes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import ARRAY

from checks.catalogue import controls as catalogue
from checks.registry import REGISTRY, Check, load_all
from collector.chain import RUNS
from collector.posture import (
    ControlState,
    SourceRun,
    control_states,
    latest_runs,
    result_rows,
    valid_at,
)
from collector.safe_output import cell
from collector.store import VERSIONS
from collector.tables import STATUS_STYLES, Column, render

DEFAULT_FRESHNESS = timedelta(hours=48)


class UnknownControl(ValueError):
    """A control id that is not in the Annex A 2022 catalogue."""


def require_controls(controls: Iterable[str] | None) -> list[str] | None:
    """The given control ids, checked against the catalogue; None or empty means all."""
    wanted = list(controls or [])
    known = catalogue()
    for control_id in wanted:
        if control_id not in known:
            raise UnknownControl(f"{control_id!r} is not an Annex A 2022 control id such as "
                                 "A.8.24")
    return wanted or None


def checks_for(controls: list[str] | None) -> dict[str, Check]:
    """The registered checks mapped to any of `controls` (all checks when None)."""
    load_all()
    return {cid: chk for cid, chk in REGISTRY.items()
            if controls is None or set(chk.controls) & set(controls)}


def evidence_kinds(checks: Iterable[Check]) -> set[str]:
    """Resource kinds whose versions can be the subject or the evidence of these checks."""
    kinds: set[str] = set()
    for chk in checks:
        kinds.update(chk.uses or (chk.resource_kind,))
    return kinds


def run_records(conn: Connection, run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ids = list(run_ids)
    if not ids:
        return {}
    rows = conn.execute(sa.select(
        RUNS.c.id, RUNS.c.source, RUNS.c.seq, RUNS.c.status, RUNS.c.started_at,
        RUNS.c.finished_at, RUNS.c.merkle_root, RUNS.c.chain_hash, RUNS.c.key_id)
        .where(RUNS.c.id.in_(ids)))
    return {r.id: {
        "source": r.source, "run": r.id, "seq": r.seq, "status": r.status,
        "started_at": r.started_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "merkle_root": r.merkle_root, "chain_hash": r.chain_hash, "key_id": r.key_id,
    } for r in rows}


def _versions(conn: Connection, sr: SourceRun, kinds: list[str],
              keys: list[str] | None) -> list[dict[str, Any]]:
    """The versions of `kinds` valid at the run: all of them, or those of `keys` only (looked up
    one by one through the key index: PostgreSQL takes them as one array, SQLite in parts)."""
    cols = (VERSIONS.c.kind, VERSIONS.c.key, VERSIONS.c.region, VERSIONS.c.digest,
            VERSIONS.c.valid_from_run)
    where = [VERSIONS.c.kind.in_(kinds)]
    if keys is None:
        parts: list[list[sa.ColumnElement[bool]]] = [[]]
    elif conn.dialect.name == "postgresql":
        parts = [[VERSIONS.c.key == sa.any_(sa.bindparam("keys", keys, type_=ARRAY(sa.Text)))]]
    else:
        parts = [[VERSIONS.c.key.in_(keys[i:i + 500])] for i in range(0, len(keys), 500)]
    return [{"key": r.key, "kind": r.kind, "source": sr.source, "region": r.region,
             "digest": r.digest, "since_run": r.valid_from_run}
            for part in parts
            for r in conn.execute(valid_at(VERSIONS, sr.source, sr.run_id, *cols,
                                           where=[*where, *part]))]


def snapshot(conn: Connection, at: datetime, controls: Iterable[str] | None = None,
             freshness: timedelta = DEFAULT_FRESHNESS, failing_only: bool = False,
             summary: bool = False) -> dict[str, Any]:
    """The state as of `at` (an aware datetime), JSON-able. Raises UnknownControl.

    With `failing_only`, results and evidence are those of failing and erroring results only.
    With `summary`, no result or evidence is listed: statuses and counts only, read from the
    counts kept on each run, so its cost does not grow with the estate. Either way the counts
    per status cover every result, and each run's Merkle root commits to all."""
    only = require_controls(controls)
    checks = checks_for(only)
    runs = latest_runs(conn, at)
    states = control_states(conn, at, freshness, only, failures=not summary)
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    runs_listed = [] if summary else runs
    if failing_only:  # the check states hold them already
        for check in {c.check.id: c for state in states for c in state.checks}.values():
            if check.check.id in checks:
                results[check.check.id].extend(check.notable)
    versions: list[dict[str, Any]] = []
    kinds = sorted(evidence_kinds(checks.values()))
    for sr in runs_listed:
        if not failing_only:
            for row in result_rows(conn, sr, checks):
                results[row["check"]].append(row)
        keys = sorted({r["subject"] for rows in results.values() for r in rows
                       if r["source"] == sr.source}) if failing_only else None
        versions.extend(_versions(conn, sr, kinds, keys))
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_digest: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for version in versions:
        by_key[(version["source"], version["key"])].append(version)
        by_digest[(version["source"], version["digest"])].append(version)
    records = run_records(conn, [sr.run_id for sr in runs])
    listing = _listing(results, by_key, by_digest)
    return {
        "at": at.isoformat(),
        "failing_only": failing_only,
        "summary": summary,
        "freshness_seconds": int(freshness.total_seconds()),
        "runs": [records[sr.run_id] for sr in sorted(runs, key=lambda r: r.source)],
        "controls": [_control(state, listing) for state in states],
    }


def _listing(results: dict[str, list[dict[str, Any]]],
             by_key: dict[tuple[str, str], list[dict[str, Any]]],
             by_digest: dict[tuple[str, str], list[dict[str, Any]]]
             ) -> Callable[[str], tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per check, its results as listed and the versions they rest on; made once per check,
    however many controls the check maps to."""
    @cache
    def listed(check_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = sorted(results.get(check_id, []), key=lambda r: (r["subject"], r["source"]))
        evidence: list[dict[str, Any]] = []
        for row in rows:
            evidence.extend(by_key.get((row["source"], row["subject"]), ()))
            for digest in row["evidence"]:
                evidence.extend(by_digest.get((row["source"], digest), ()))
        return [{k: v for k, v in r.items() if k != "check"} for r in rows], evidence
    return listed


def _control(state: ControlState, listing: Callable[[str], tuple[
        list[dict[str, Any]], list[dict[str, Any]]]]) -> dict[str, Any]:
    out = state.as_dict()
    evidence: dict[tuple[str, str], dict[str, Any]] = {}
    for check in out["checks"]:
        check["results"], versions = listing(check["id"])
        for version in versions:
            evidence[(version["source"], version["key"])] = version
    out["evidence"] = sorted(evidence.values(), key=lambda v: (v["key"], v["source"]))
    return out


RUN_COLUMNS = (Column("source", fit="middle"), Column("run", justify="right"),
               Column("seq", justify="right"), Column("status", styles=STATUS_STYLES),
               Column("finished"), Column("chain hash", fit="middle"))


def render_table(snap: dict[str, Any]) -> str:
    """The snapshot for a terminal: runs, then per control its checks, failures and evidence.
    Whatever evidence controls is shown escaped, one value to its line."""
    lines = [f"Snapshot as of {snap['at']}"]
    if not snap["runs"]:
        lines.append("no sealed run had finished by then: nothing was known")
    else:
        lines.append(render(RUN_COLUMNS, [
            (run["source"], run["run"], f"#{run['seq']}", run["status"], run["finished_at"],
             run["chain_hash"]) for run in snap["runs"]]))
    for control in snap["controls"]:
        lines.append("")
        lines.append(f"{control['id']:<8} {control['status']:<15} {control['title']}")
        for check in control["checks"]:
            counts = ", ".join(f"{n} {s}" for s, n in check["resources"].items()) or "no results"
            lines.append(f"  {check['status']:<15} {check['id']} ({counts})")
            for result in check["results"]:
                if result["status"] in ("fail", "error"):
                    lines.append(f"    {result['status'].upper():<6} {cell(result['subject'])}: "
                                 f"{cell(result['reason'])}")
        for version in control["evidence"]:
            lines.append(f"  evidence {version['digest']} {cell(version['key'])}")
    return "\n".join(lines)
