"""The judgement shared by every source split into units of work (an AWS organisation's
accounts, Azure management groups, GCP folders): each unit has a complete or partial run no
older than its window. The source's own run holds a record per unit, as
collector.organizations writes it: its id under `id_field`, whether it is collected, why
not, its window and its last runs."""

from __future__ import annotations

from typing import Any

from collector.model import Verdict, errored, failed, passed

_SHOWN = 5  # units named in a reason; the rest are counted


def named(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return "; ".join(items[:_SHOWN]) + more


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def every_unit_collected(members: list[dict[str, Any]], id_field: str, noun: str,
                         none: str) -> Verdict:
    """Every collected member was collected in its last window (`noun`: the plural, such as
    "accounts"; `none`: why there is nothing to judge when there is no member)."""
    if not members:
        return errored(none)
    collected = [m for m in members if m.get("collected")]
    late = []
    for member in sorted(collected, key=lambda m: m[id_field]):
        age, window = member.get("age_seconds"), member.get("window_seconds") or 0
        last = member.get("last_run") or {}
        why = f": last run {last['status']}: {last.get('message')}" if last.get(
            "status") in ("failed", "interrupted") else ""
        if age is None:
            late.append(f"{member[id_field]} never collected{why}")
        elif age > window:
            late.append(f"{member[id_field]} last collected {_hours(age)} ago, beyond its "
                        f"{_hours(window)} window{why}")
    if late:
        return failed(f"{len(late)} of {len(collected)} {noun} not collected in their last "
                      f"window: {named(late)}")
    left_out = sorted(m[id_field] for m in members if not m.get("collected"))
    excluded = f"; {len(left_out)} left out by configuration: {named(left_out)}" \
        if left_out else ""
    return passed(f"all {len(collected)} {noun} collected in their last window{excluded}")
