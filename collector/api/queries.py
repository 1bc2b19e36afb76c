"""Read-only queries behind the auditor API: results at an instant, runs in a range, and
evidence by digest (optionally only if it was valid within a window)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from collector.chain import RUNS, run_errors
from collector.posture import latest_runs, valid_at
from collector.store import BLOBS, RESULTS, VERSIONS, decompress

_RESULT_COLUMNS = ("source", "check_id", "subject", "kind", "region", "status", "reason",
                   "evidence", "result_digest", "valid_from_run", "valid_to_run")


def results_at(conn: Connection, at: datetime, *, check: str | None, status: str | None,
               limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """The check results that held at `at` (per source, at its last sealed run by then)."""
    where = []
    if check:
        where.append(RESULTS.c.check_id == check)
    if status:
        where.append(RESULTS.c.status == status)
    cols = [RESULTS.c[name] for name in _RESULT_COLUMNS]
    # Each source's half-open halves are wrapped, since SQLite cannot nest compound selects.
    parts = [sa.select(valid_at(RESULTS, sr.source, sr.run_id, *cols, where=where).subquery())
             for sr in latest_runs(conn, at)]
    if not parts:
        return 0, []
    held = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()
    total = conn.scalar(sa.select(sa.func.count()).select_from(held)) or 0
    rows = conn.execute(sa.select(held).order_by(held.c.source, held.c.check_id,
                                                 held.c.subject).limit(limit).offset(offset))
    items = [{**row._asdict(), "evidence": json.loads(row.evidence)} for row in rows]
    return total, items


def runs_between(conn: Connection, start: datetime | None, end: datetime | None,
                 source: str | None, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """Sealed runs that finished within [start, end], in chain order, with their seals."""
    cond = [RUNS.c.seq.is_not(None)]
    if start is not None:
        cond.append(RUNS.c.finished_at >= start)
    if end is not None:
        cond.append(RUNS.c.finished_at <= end)
    if source:
        cond.append(RUNS.c.source == source)
    total = conn.scalar(sa.select(sa.func.count()).select_from(RUNS).where(*cond)) or 0
    rows = conn.execute(sa.select(RUNS).where(*cond).order_by(RUNS.c.seq)
                        .limit(limit).offset(offset)).mappings().all()
    return total, [{**row, "collection_errors": run_errors(conn, row["id"])} for row in rows]


class Pruned(Exception):
    """The blob's digest is kept but its body was dropped by retention."""


def evidence(conn: Connection, digest: str, window: tuple[datetime | None, datetime | None]
             | None) -> bytes | None:
    """The canonical JSON of a blob; None if unknown (or never valid within `window`)."""
    row = conn.execute(sa.select(BLOBS.c.body).where(BLOBS.c.digest == digest)).first()
    if row is None:
        return None
    if window is not None and not _valid_within(conn, digest, *window):
        return None
    if row.body is None:
        raise Pruned(digest)
    return decompress(row.body)


def _valid_within(conn: Connection, digest: str, start: datetime | None,
                  end: datetime | None) -> bool:
    """Whether some resource version with this blob held at an instant of [start, end]: it
    began at a run finished by `end` and ended (if it did) at a run finished after `start`."""
    began = RUNS.alias("began")
    ended = RUNS.alias("ended")
    query = (sa.select(VERSIONS.c.id)
             .join(began, began.c.id == VERSIONS.c.valid_from_run)
             .outerjoin(ended, ended.c.id == VERSIONS.c.valid_to_run)
             .where(VERSIONS.c.digest == digest))
    if end is not None:
        query = query.where(began.c.finished_at <= end)
    if start is not None:
        query = query.where(sa.or_(VERSIONS.c.valid_to_run.is_(None),
                                   ended.c.finished_at > start))
    return conn.execute(query.limit(1)).first() is not None
