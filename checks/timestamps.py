"""Timestamps in evidence: ISO 8601 as the providers write them (`Z`, offsets, none, up to
seven fractional digits as Microsoft Graph sends), read as UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse(timestamp: str) -> datetime:
    """A timestamp without an offset is UTC."""
    then = datetime.fromisoformat(timestamp)
    return then if then.tzinfo is not None else then.replace(tzinfo=UTC)


def days_since(timestamp: str, now: datetime | None = None) -> float:
    return ((now or datetime.now(UTC)) - parse(timestamp)).total_seconds() / 86400
