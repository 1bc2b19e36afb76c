"""Control posture at any instant, derived from the sealed runs and their result intervals.

Three lanes meet here, each as it stood at `at`: the automated checks (per source, the last
sealed run finished by `at`), the Statement of Applicability and the attestations (the last
sealed run of `annexa-soa` and of `annexa-attestations` finished by `at`).

The automated lane alone (in order): a control fails if any check mapped to it fails. Otherwise
it is `unknown` if a check errored or its source's last collection failed, or no check has any
result yet; `stale` if the newest evidence it rests on is older than the freshness window;
`not_applicable` if every result is; else `pass`.

Combined (in order):
1. Excluded by the SoA: `not_applicable`, whatever the checks say; never counted as failing.
2. Neither a mapped check nor an attestation: `manual` (it needs an attestation).
3. Checks only: the automated lane.
4. An attestation only: `pass` while its review date lies after `at`, `stale` from then on.
5. Both (each must hold): `fail` if the automated lane fails; else `unknown` if it is unknown;
   else `stale` if either is stale (an overdue attestation, or old automated evidence); else
   `pass`. Checks that are all not applicable leave the attestation to decide.
The newest attestation of a control supersedes the older ones; `evidence_at` is the newest
evidence of either lane.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key
from checks.registry import REGISTRY, Check
from collector import attestations, soa
from collector.attestations import Attestation
from collector.chain import RUNS
from collector.soa import Entry as SoaEntry
from collector.store import RESULTS, parse_evidence


@dataclass(frozen=True)
class SourceRun:
    source: str
    run_id: int
    status: str
    finished_at: datetime
    evidence_at: datetime | None  # the newest run whose collection did not fail
    result_counts: str | None = None  # the run's summary (JSON), None if sealed before 0004


@dataclass
class CheckState:
    check: Check
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    evidence_at: datetime | None = None
    source_failed: bool = False
    notable: list[dict[str, Any]] = field(default_factory=list)  # failing and erroring results

    @property
    def failing(self) -> list[str]:
        return [r["subject"] for r in self.notable if r["status"] == "fail"]

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [{"resource": r["subject"], "reason": r["reason"], "evidence": r["evidence"]}
                for r in self.notable if r["status"] == "fail"]

    @property
    def errors(self) -> list[str]:
        return [f"{r['subject']}: {r['reason']}" for r in self.notable if r["status"] != "fail"]

    @property
    def status(self) -> str:
        if self.counts.get("fail"):
            return "fail"
        if self.counts.get("error") or self.source_failed:
            return "error"
        if self.counts.get("pass"):
            return "pass"
        if self.counts.get("not_applicable"):
            return "not_applicable"
        return "unknown"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.check.id,
            "title": self.check.title,
            "severity": self.check.severity,
            "status": self.status,
            "resources": dict(sorted(self.counts.items())),
            "failing_resources": sorted(self.failing),
            "failures": sorted(self.failures, key=lambda f: f["resource"]),
            "errors": self.errors[:20],
            "evidence_at": self.evidence_at.isoformat() if self.evidence_at else None,
        }


@dataclass
class ControlState:
    id: str
    title: str
    theme: str
    status: str
    checks: list[CheckState]
    evidence_at: datetime | None
    soa: SoaEntry | None = None  # the control's line of the SoA in force, if it has one
    attestation: Attestation | None = None  # the attestation in force, if any
    attestation_current: bool | None = None  # its review date lies after the instant

    def as_dict(self) -> dict[str, Any]:
        attestation = None
        if self.attestation:
            attestation = {**self.attestation.as_dict(), "current": self.attestation_current}
        return {
            "id": self.id, "title": self.title, "theme": self.theme, "status": self.status,
            "evidence_at": self.evidence_at.isoformat() if self.evidence_at else None,
            "checks": [c.as_dict() for c in self.checks],
            "soa": self.soa.as_dict() if self.soa else None,
            "attestation": attestation,
        }


def latest_runs(conn: Connection, at: datetime) -> list[SourceRun]:
    """Per source, the last sealed run that had finished by `at`."""
    out = []
    sources = conn.scalars(sa.select(RUNS.c.source).distinct().where(RUNS.c.seq.is_not(None)))
    for source in list(sources):
        rows = conn.execute(
            sa.select(RUNS.c.id, RUNS.c.status, RUNS.c.finished_at, RUNS.c.result_counts)
            .where(RUNS.c.source == source, RUNS.c.seq.is_not(None), RUNS.c.finished_at <= at)
            .order_by(RUNS.c.id.desc()).limit(1)).first()
        if rows is None:
            continue
        good = conn.scalar(
            sa.select(RUNS.c.finished_at).where(
                RUNS.c.source == source, RUNS.c.seq.is_not(None), RUNS.c.finished_at <= at,
                RUNS.c.status.in_(("complete", "partial"))).order_by(RUNS.c.id.desc()).limit(1))
        out.append(SourceRun(source, rows.id, rows.status, rows.finished_at, good,
                             rows.result_counts))
    return out


def valid_between(table: sa.Table, source: str, first_run: int, last_run: int,
                  *columns: sa.ColumnElement[Any],
                  where: Iterable[sa.ColumnElement[bool]] = ()) -> sa.CompoundSelect:
    """Rows of `source` valid at some run in [first_run, last_run], as two index-friendly
    halves: still open, and closed after first_run (one OR of both would make most planners
    scan the whole history)."""
    extra = list(where)
    still_open = sa.select(*columns).where(
        table.c.source == source, table.c.valid_to_run.is_(None),
        table.c.valid_from_run <= last_run, *extra)
    closed_later = sa.select(*columns).where(
        table.c.source == source, table.c.valid_to_run > first_run,
        table.c.valid_from_run <= last_run, *extra)
    return sa.union_all(still_open, closed_later)


def valid_at(table: sa.Table, source: str, run_id: int, *columns: sa.ColumnElement[Any],
             where: Iterable[sa.ColumnElement[bool]] = ()) -> sa.CompoundSelect:
    """Rows of `source` valid at `run_id`."""
    return valid_between(table, source, run_id, run_id, *columns, where=where)


def result_counts(conn: Connection, sr: SourceRun) -> dict[str, dict[str, int]]:
    """{check id: {status: results}} of the results valid at the run: the summary kept on the
    run since 0004, counted from the results for a run sealed before it."""
    if sr.result_counts is not None:
        return json.loads(sr.result_counts)
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    query = sa.select(RESULTS.c.check_id, RESULTS.c.status, sa.func.count()).where(
        RESULTS.c.source == sr.source, RESULTS.c.valid_from_run <= sr.run_id,
        sa.or_(RESULTS.c.valid_to_run.is_(None), RESULTS.c.valid_to_run > sr.run_id),
    ).group_by(RESULTS.c.check_id, RESULTS.c.status)
    for check_id, status, n in conn.execute(query):
        counts[check_id][status] = n
    return counts


NOTABLE = ("fail", "error")


def result_rows(conn: Connection, sr: SourceRun, checks: Iterable[str] | None = None,
                notable_only: bool = False) -> list[dict[str, Any]]:
    """The results of `sr`'s source valid at its run, as snapshots list them: of `checks` only
    if given, and with `notable_only` the failing and erroring ones only (through the partial
    index of such results)."""
    where = [RESULTS.c.status.in_(NOTABLE)] if notable_only else []
    if checks is not None:
        where.append(RESULTS.c.check_id.in_(sorted(checks)))
    query = valid_at(
        RESULTS, sr.source, sr.run_id, RESULTS.c.check_id, RESULTS.c.subject, RESULTS.c.region,
        RESULTS.c.status, RESULTS.c.reason, RESULTS.c.evidence, RESULTS.c.result_digest,
        RESULTS.c.valid_from_run, where=where)
    return [{"check": c, "subject": subj, "status": st, "reason": r, "evidence": parse_evidence(e),
             "source": sr.source, "region": reg, "result_digest": d, "since_run": since}
            for c, subj, reg, st, r, e, d, since in conn.execute(query)]


def check_states(conn: Connection, at: datetime, failures: bool = True,
                 listed: set[str] | None = None) -> dict[str, CheckState]:
    """Every check's counts at `at`, and with `failures` the failing and erroring results of
    the checks in `listed` (of all checks when None)."""
    states = {cid: CheckState(chk) for cid, chk in REGISTRY.items()}
    for sr in latest_runs(conn, at):
        for check_id, by_status in result_counts(conn, sr).items():
            state = states.get(check_id)
            if state is None:
                continue  # a check that this version of Annexa no longer ships
            for status, n in by_status.items():
                state.counts[status] += n
            state.source_failed |= sr.status == "failed"
            if sr.evidence_at and (state.evidence_at is None or sr.evidence_at > state.evidence_at):
                state.evidence_at = sr.evidence_at
        for row in result_rows(conn, sr, listed, notable_only=True) if failures else ():
            state = states.get(row["check"])
            if state is None:
                continue
            state.notable.append(row)
    return states


def control_states(conn: Connection, at: datetime, freshness: timedelta,
                   only: list[str] | None = None, failures: bool = True) -> list[ControlState]:
    listed = None if not only else {
        cid for cid, chk in REGISTRY.items() if set(chk.controls) & set(only)}
    states = check_states(conn, at, failures, listed)
    statement = soa.soa_at(conn, at).entries
    attested = attestations.latest_at(conn, at)
    by_control: dict[str, list[CheckState]] = defaultdict(list)
    for state in states.values():
        for control_id in state.check.controls:
            by_control[control_id].append(state)
    out = []
    for control in sorted(catalogue().values(), key=lambda c: sort_key(c.id)):
        if only and control.id not in only:
            continue
        mapped = sorted(by_control.get(control.id, []), key=lambda s: s.check.id)
        evidence = max((s.evidence_at for s in mapped if s.evidence_at), default=None)
        entry, attestation = statement.get(control.id), attested.get(control.id)
        current = attestation.current(at) if attestation else None
        status = _combine(entry, current, mapped, evidence, at, freshness)
        if attestation and (evidence is None or attestation.attested_at > evidence):
            evidence = attestation.attested_at
        out.append(ControlState(control.id, control.title, control.theme, status, mapped,
                                evidence, entry, attestation, current))
    return out


def _combine(entry: SoaEntry | None, attestation_current: bool | None,
             mapped: list[CheckState], evidence: datetime | None, at: datetime,
             freshness: timedelta) -> str:
    """The rules of the module docstring, "Combined"."""
    if entry is not None and not entry.applicable:
        return "not_applicable"
    automated = _derive(mapped, evidence, at, freshness)
    if attestation_current is None:
        return automated
    attested = "pass" if attestation_current else "stale"
    if automated in ("manual", "not_applicable"):
        return attested
    for status in ("fail", "unknown", "stale"):
        if status in (automated, attested):
            return status
    return "pass"


def _derive(mapped: list[CheckState], evidence: datetime | None, at: datetime,
            freshness: timedelta) -> str:
    if not mapped:
        return "manual"
    statuses = {s.status for s in mapped}
    if "fail" in statuses:
        return "fail"
    if "error" in statuses or statuses == {"unknown"}:
        return "unknown"
    if evidence is None or at - evidence > freshness:
        return "stale"
    if statuses <= {"not_applicable", "unknown"}:
        return "not_applicable"
    return "pass"
