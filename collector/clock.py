"""The ledger's time only moves forward. "As of" answers come from when runs finished: a run
sealed by a clock that was set back would date its evidence before evidence the ledger already
holds, and rewrite what was true at those instants. So no run starts while the clock reads
earlier than the newest sealed run's end, beyond the skew that machines sealing into one chain
may have between them."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import Engine

from collector.chain import RUNS
from collector.locks import NotStarted
from collector.schema import now

# How far apart the clocks of the machines that seal into one chain may be (NTP keeps them
# within milliseconds; a cluster's workers and the service all seal).
SKEW = timedelta(minutes=5)


class ClockBehind(NotStarted):
    """The clock reads earlier than the ledger's newest sealed run ended."""


def require_clock_not_behind(engine: Engine) -> None:
    with engine.connect() as conn:
        newest = conn.execute(sa.select(RUNS.c.seq, RUNS.c.source, RUNS.c.finished_at)
                              .where(RUNS.c.seq.is_not(None))
                              .order_by(RUNS.c.seq.desc()).limit(1)).first()
    if newest is None or newest.finished_at is None:
        return
    ended = newest.finished_at
    clock = now()
    if clock < ended - SKEW:
        raise ClockBehind(
            f"the clock reads {clock.isoformat(timespec='seconds')}, "
            f"{ended - clock} before the newest sealed run (#{newest.seq} of {newest.source}) "
            f"ended at {ended.isoformat(timespec='seconds')}; evidence sealed now would be "
            "dated before evidence the ledger already holds. Set the clock right (NTP) and "
            "collect again")
