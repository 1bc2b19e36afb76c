"""What a time window [start, end] holds, for the OSCAL and OCSF exports.

A check result belongs to the window if it held at some instant of it: at `start` (the state of
each source's last sealed run finished by then) or at any sealed run finished after `start` and
by `end`. Its `collected` time is the end of the last successful collection (complete or partial)
in the window at which it held, else the end of the run that first recorded it.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection

from checks.registry import REGISTRY
from collector.chain import RUNS
from collector.store import RESULTS

SUCCESSFUL = ("complete", "partial")


@dataclass(frozen=True, slots=True)
class RunPoint:
    id: int
    finished_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class WindowResult:
    id: int
    source: str
    check_id: str
    subject: str
    kind: str
    region: str
    status: str
    reason: str
    evidence: list[str]
    result_digest: str
    valid_from_run: int
    valid_to_run: int | None
    first_seen: datetime
    collected: datetime
    opened_in_window: bool


def check_controls(only: list[str] | None) -> set[str] | None:
    """The check ids that map to any of `only` (None: every check)."""
    if not only:
        return None
    return {cid for cid, chk in REGISTRY.items() if set(chk.controls) & set(only)}


def window_runs(conn: Connection, start: datetime, end: datetime) -> dict[str, list[RunPoint]]:
    """Per source, the sealed runs whose state held during the window, oldest first."""
    out: dict[str, list[RunPoint]] = {}
    sealed = RUNS.c.seq.is_not(None)
    sources = list(conn.scalars(sa.select(RUNS.c.source).distinct().where(sealed)))
    cols = (RUNS.c.id, RUNS.c.finished_at, RUNS.c.status)
    for source in sorted(sources):
        before = conn.execute(sa.select(*cols).where(
            RUNS.c.source == source, sealed, RUNS.c.finished_at <= start)
            .order_by(RUNS.c.id.desc()).limit(1)).first()
        inside = conn.execute(sa.select(*cols).where(
            RUNS.c.source == source, sealed, RUNS.c.finished_at > start,
            RUNS.c.finished_at <= end).order_by(RUNS.c.id)).all()
        points = [RunPoint(*r) for r in ([before] if before else []) + list(inside)]
        if points:
            out[source] = points
    return out


def instants(conn: Connection, start: datetime, end: datetime, skip: set[str]) -> list[datetime]:
    """Every instant at which the state changed within the window, with its two ends."""
    found = {start, end}
    for source, points in window_runs(conn, start, end).items():
        if source not in skip:
            found.update(p.finished_at for p in points if p.finished_at > start)
    return sorted(found)


def results_in_window(conn: Connection, start: datetime, end: datetime,
                      checks: set[str] | None = None) -> Iterator[WindowResult]:
    for source, points in window_runs(conn, start, end).items():
        yield from _source_results(conn, source, points, start, checks)


def _source_results(conn: Connection, source: str, points: list[RunPoint], start: datetime,
                    checks: set[str] | None) -> Iterator[WindowResult]:
    lo, hi = points[0].id, points[-1].id
    good = [p for p in points if p.status in SUCCESSFUL]
    good_ids = [p.id for p in good]
    cond = [RESULTS.c.source == source, RESULTS.c.valid_from_run <= hi,
            sa.or_(RESULTS.c.valid_to_run.is_(None), RESULTS.c.valid_to_run > lo)]
    if checks is not None:
        cond.append(RESULTS.c.check_id.in_(sorted(checks)))
    rows = conn.execute(sa.select(RESULTS).where(*cond).order_by(RESULTS.c.id)).all()
    finished = _finish_times(conn, {r.valid_from_run for r in rows})
    for row in rows:
        # The last successful run in the window at which this result held.
        upper = bisect.bisect_left(good_ids, row.valid_to_run) if row.valid_to_run else len(good)
        last = good[upper - 1] if upper and good_ids[upper - 1] >= row.valid_from_run else None
        first_seen = finished[row.valid_from_run]
        yield WindowResult(
            id=row.id, source=source, check_id=row.check_id, subject=row.subject, kind=row.kind,
            region=row.region, status=row.status, reason=row.reason,
            evidence=json.loads(row.evidence), result_digest=row.result_digest,
            valid_from_run=row.valid_from_run, valid_to_run=row.valid_to_run,
            first_seen=first_seen, collected=last.finished_at if last else first_seen,
            opened_in_window=first_seen > start,
        )


def _finish_times(conn: Connection, run_ids: set[int]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    ids = sorted(run_ids)
    for i in range(0, len(ids), 500):
        rows = conn.execute(sa.select(RUNS.c.id, RUNS.c.finished_at, RUNS.c.started_at)
                            .where(RUNS.c.id.in_(ids[i:i + 500])))
        out.update({rid: fin or began for rid, fin, began in rows})
    return out
