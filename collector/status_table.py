"""`annexa status` as a table: a source per row with its accounts under it, then the service's
health, then what makes the command exit 1."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from datetime import datetime, timedelta

from collector.chain import HEAD_PREFIX_DIGITS
from collector.safe_output import cell
from collector.status import Listener, SourceStatus, Status
from collector.tables import STATUS_STYLES, Column, print_table, terminal

FRESHNESS_STYLES = {"fresh": "green", "stale": "yellow", "never": "bold red", "retired": "dim"}
# The chain head is never shortened: its 13 hex digits are what `verify --expect-head` takes.
COLUMNS = (Column("source", fit="middle"), Column("kind"),
           Column("last run", styles=STATUS_STYLES), Column("finished", justify="right"),
           Column("took", justify="right"), Column("resources", justify="right"),
           Column("errors", justify="right"), Column("chain head"),
           Column("next run"), Column("evidence", styles=FRESHNESS_STYLES),
           Column("age", justify="right"))


def print_status(status: Status) -> None:
    problems = status.problems()
    print(f"annexa status as of {_when(status.at)}: "
          + ("ok" if not problems else f"{len(problems)} problem(s)") + "\n")
    rows: list[Sequence[object]] = []
    for source in status.sources:
        rows.append(_row(source, status.at, ""))
        rows += [_row(unit, status.at, "  ") for unit in source.units]
    if status.people is not None:
        rows.append(_row(status.people, status.at, ""))
    if rows:
        print_table(COLUMNS, rows)
    else:
        print("no source is configured")
    everyone = [*status.sources, *(u for s in status.sources for u in s.units),
                *([status.people] if status.people else [])]
    for source in everyone:
        if source.unsealed_since is not None:
            print(f"{cell(source.name)}: a run started {_span(status.at - source.unsealed_since)}"
                  " ago is not sealed yet: being collected, or left by a stopped process (the "
                  "next collection seals it as interrupted)")
    print("\n".join(_fitted(_health(status, problems), terminal().width)))


def _fitted(lines: list[str], width: int | None) -> list[str]:
    """On a terminal, long lines wrap at words under their own indent and label (`  store    `)
    rather than wherever the terminal cuts them; in a pipe they stay whole."""
    if width is None:
        return lines
    out = []
    for line in lines:
        label = re.match(r" *(?:\S+ {2,})?", line)
        head = label.group(0) if label else ""
        parts = textwrap.wrap(line[len(head):], max(20, width - len(head)),
                              break_on_hyphens=False) or [""]
        out += [head + parts[0], *(" " * len(head) + part for part in parts[1:])]
    return out


def _health(status: Status, problems: list[str]) -> list[str]:
    lines = ["", f"evidence is stale after {_span(status.freshness_window)} (freshness)", "",
             "service:"]
    store = status.store
    lines.append(f"  store    {cell(store['database'])}: reachable, schema at revision "
                 f"{cell(store['revision'])} (current)")
    lines.append(f"  verify   {_verify(status)}")
    lines.append(f"  api      {_listener(status.api)}")
    lines.append(f"  metrics  {_listener(status.metrics)}")
    if problems:
        lines += ["", "problems:"] + [f"  {cell(p)}" for p in problems]
    return lines


def _row(source: SourceStatus, at: datetime, indent: str) -> list[object]:
    run = source.last_run
    if run is None:
        last: list[object] = ["never run", "-", "-", "-", "-", "-"]
    else:
        last = [run.status, f"{_span(at - run.finished_at)} ago", f"{run.seconds:.1f}s",
                run.resources,
                run.errors, f"#{run.seq}:{run.chain_hash[:HEAD_PREFIX_DIGITS]}"]
    age = ("-" if source.evidence_age_seconds is None
           else _span(timedelta(seconds=source.evidence_age_seconds)))
    return [indent + source.name, source.kind, *last, _next(source, at), source.freshness, age]


def _next(source: SourceStatus, at: datetime) -> str:
    if source.freshness == "retired":
        return "-"
    if source.next_run_at is None:
        return "at once (never run)" if source.last_run is None else "-"
    if source.next_run_overdue:
        return f"overdue {_span(at - source.next_run_at)}"
    return f"in {_span(source.next_run_at - at)}"


def _verify(status: Status) -> str:
    verify = status.last_verify
    if verify is None:
        return "never verified (run `annexa verify`; the service verifies at start and daily)"
    what = "intact" if verify.ok else f"BROKEN: {cell(verify.problem or '')}"
    return (f"{what}; {verify.runs} runs verified, {_span(status.at - verify.finished_at)} ago "
            f"({_when(verify.finished_at)}, by {cell(verify.by)})")


def _listener(listener: Listener) -> str:
    where = f"{cell(listener.host)}:{listener.port}"
    if not listener.enabled:
        return f"{where}: {cell(listener.detail)}"
    if listener.listening:
        return f"{where}: listening"
    return f"{where}: not listening: {cell(listener.detail)}"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ")


def _span(delta: timedelta) -> str:
    """`3h12m`: the two largest units, from the first that is not zero."""
    days, rest = divmod(int(abs(delta.total_seconds())), 86400)
    hours, rest = divmod(rest, 3600)
    parts = [(days, "d"), (hours, "h"), *zip(divmod(rest, 60), "ms", strict=True)]
    first = next((i for i, (n, _) in enumerate(parts) if n), len(parts) - 1)
    return "".join(f"{n}{unit}" for n, unit in parts[first:first + 2] if n) or "0s"

