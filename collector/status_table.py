"""`annexa status` as a table: a source per row with its accounts under it, then the service's
health, then what makes the command exit 1."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from collector.chain import HEAD_PREFIX_DIGITS
from collector.safe_output import cell
from collector.status import Listener, SourceStatus, Status

HEADERS = ("source", "kind", "last run", "finished", "took", "resources", "errors",
           "chain head", "next run", "evidence")


def render(status: Status) -> str:
    problems = status.problems()
    lines = [f"annexa status as of {_when(status.at)}: "
             + ("ok" if not problems else f"{len(problems)} problem(s)"), ""]
    rows: list[Sequence[object]] = []
    for source in status.sources:
        rows.append(_row(source, status.at, ""))
        rows += [_row(unit, status.at, "  ") for unit in source.units]
    if status.people is not None:
        rows.append(_row(status.people, status.at, ""))
    lines += _grid(HEADERS, rows) if rows else ["no source is configured"]
    lines += ["", f"evidence is stale after {_span(status.freshness_window)} (freshness)", "",
              "service:"]
    store = status.store
    lines.append(f"  store    {cell(store['database'])}: reachable, schema at revision "
                 f"{cell(store['revision'])} (current)")
    lines.append(f"  verify   {_verify(status)}")
    lines.append(f"  api      {_listener(status.api)}")
    lines.append(f"  metrics  {_listener(status.metrics)}")
    if problems:
        lines += ["", "problems:"] + [f"  {cell(p)}" for p in problems]
    return "\n".join(lines)


def _row(source: SourceStatus, at: datetime, indent: str) -> list[object]:
    run = source.last_run
    if run is None:
        last: list[object] = ["never run", "-", "-", "-", "-", "-"]
    else:
        last = [run.status, _when(run.finished_at), f"{run.seconds:.1f}s", run.resources,
                run.errors, f"#{run.seq}:{run.chain_hash[:HEAD_PREFIX_DIGITS]}"]
    return [indent + source.name, source.kind, *last, _next(source, at), _evidence(source)]


def _next(source: SourceStatus, at: datetime) -> str:
    if source.freshness == "retired":
        return "-"
    if source.next_run_at is None:
        return "at once (never run)" if source.last_run is None else "-"
    if source.next_run_overdue:
        return f"overdue {_span(at - source.next_run_at)}"
    return f"in {_span(source.next_run_at - at)}"


def _evidence(source: SourceStatus) -> str:
    if source.evidence_age_seconds is None:
        return "retired" if source.freshness == "retired" else "never collected"
    return f"{source.freshness}, {_span(timedelta(seconds=source.evidence_age_seconds))} old"


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


def _grid(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """Columns padded to their widest cell (until the shared renderer of collector/tables.py
    replaces this)."""
    shown = [[cell(v) for v in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in shown) for i in range(len(headers))]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in shown]
