"""A source's `schedule` as the service's scheduler fires it, and when it fires next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from collector.config import parse_schedule


def trigger(schedule: str) -> IntervalTrigger | CronTrigger:
    kind, value = parse_schedule(schedule)
    if kind == "interval":
        assert isinstance(value, timedelta)
        return IntervalTrigger(seconds=int(value.total_seconds()), timezone=UTC)
    return CronTrigger.from_crontab(str(value), timezone=UTC)


def next_after(schedule: str, fired_at: datetime) -> datetime | None:
    """The firing that follows one at `fired_at`, as `annexa run` schedules it: an interval
    after it, or the cron expression's next time after it (None if it never fires again)."""
    return trigger(schedule).get_next_fire_time(fired_at, fired_at)
