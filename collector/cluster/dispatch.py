"""Enqueue units and wait for their seals, read from the store: the same outcomes, summary and
exit codes as a collection in one process."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from celery import Celery
from sqlalchemy import Connection, Engine

from collector.chain import RUNS, run_errors
from collector.cluster.app import TASK, message
from collector.config import SourceConfig
from collector.db import once_reachable
from collector.model import CollectionError
from collector.organizations import UnitRunner
from collector.pipeline import ABANDONED, RunOutcome
from collector.store import BLOBS, VERSIONS, WriteStats

_POLL = 0.5  # seconds between two reads of the store while waiting for seals


class NotSealed(RuntimeError):
    """Units enqueued but not sealed within the wait."""


def sealed_after(conn: Connection, unit: str, after: int) -> Any:
    """The unit's first run after run `after` that was sealed by its collection (not one
    that a later worker sealed as abandoned: that collection is being done again), or None."""
    return conn.execute(sa.select(RUNS).where(
        RUNS.c.source == unit, RUNS.c.id > after, RUNS.c.seq.is_not(None),
        sa.or_(RUNS.c.message.is_(None), RUNS.c.message != ABANDONED))
        .order_by(RUNS.c.id).limit(1)).first()


def last_run_id(conn: Connection, unit: str) -> int:
    return conn.scalar(sa.select(sa.func.coalesce(sa.func.max(RUNS.c.id), 0))
                       .where(RUNS.c.source == unit)) or 0


def queue_runner(app: Celery, engine: Engine, wait: float) -> UnitRunner:
    """Enqueue each unit as a task and return once every one is sealed."""
    def run(units: list[SourceConfig]) -> list[RunOutcome]:
        with engine.connect() as conn:
            after = {unit.name: last_run_id(conn, unit.name) for unit in units}
        for unit in units:
            app.send_task(TASK, args=[message(unit), after[unit.name]])
        return wait_for(engine, after, wait)
    return run


def wait_for(engine: Engine, after: dict[str, int], wait: float) -> list[RunOutcome]:
    deadline = time.monotonic() + wait
    done: dict[str, RunOutcome] = {}

    def look() -> None:
        with engine.connect() as conn:
            for unit, run_id in after.items():
                if unit not in done:
                    row = sealed_after(conn, unit, run_id)
                    if row is not None:
                        done[unit] = outcome_of(conn, row)

    while len(done) < len(after):
        # A database restart while the workers collect is waited out, as they wait it out.
        once_reachable(look)
        if len(done) < len(after):
            if time.monotonic() >= deadline:
                missing = sorted(set(after) - set(done))
                raise NotSealed(f"{len(missing)} unit(s) not sealed within {wait:.0f}s (is an "
                                f"`annexa worker` running?): {', '.join(missing[:10])}")
            time.sleep(_POLL)
    return [done[unit] for unit in after]


def outcome_of(conn: Connection, run: Any) -> RunOutcome:
    """A sealed run as the pipeline would have reported it."""
    by_status: dict[str, int] = {}
    for counts in json.loads(run.result_counts or "{}").values():
        for status, n in counts.items():
            by_status[status] = by_status.get(status, 0) + n
    stats = WriteStats(
        resources=run.resources, results=run.results, by_status=by_status,
        new_blobs=conn.scalar(sa.select(sa.func.count()).where(BLOBS.c.first_run == run.id)),
        new_versions=conn.scalar(sa.select(sa.func.count()).where(
            VERSIONS.c.source == run.source, VERSIONS.c.valid_from_run == run.id)))
    errors = [CollectionError(scope=e["scope"], region=e["region"], service=e["service"],
                              kinds=tuple(json.loads(e["kinds"])), message=e["message"])
              for e in run_errors(conn, run.id)]
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    return RunOutcome(run.id, run.source, run.status, seconds, run.message, errors, stats,
                      run.seq, run.chain_hash)
