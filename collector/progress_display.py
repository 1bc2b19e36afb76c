"""The live progress of long commands on a terminal (rich.progress), on stderr.

One row per task and part (a source and an API service, an export and what it writes):
resources so far, requests, errors, elapsed time and a rate. While it runs, whatever the
command writes to a stream that is this terminal is printed above the rows, escaped as ever.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.progress import (
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from collector.safe_output import TerminalStream, cell, underlying
from collector.tables import shorten_middle, terminal


class RateColumn(ProgressColumn):
    """Resources a second since the row began (or until it ended)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        resources = task.fields["resources"]
        rate = f"{resources / elapsed:,.0f}" if resources and elapsed >= 0.1 else "-"
        return Text(f"{rate:>7}/s")


# The row of a task's totals, named by the task; its parts' rows follow it, unnamed.
ALL = "all"
NAME_WIDTH = 20


@dataclass
class _Counts:
    task: TaskID
    resources: int = 0
    requests: int = 0
    errors: int = 0


class LiveProgress:
    """A collector.progress.Progress that shows its counts as rich progress rows."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓" if console.color_system else "✓"),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[resources]:>8,} resources"),
            TextColumn("{task.fields[requests]:>6,} requests"),
            TextColumn("{task.fields[errors]:>4,} errors"),
            TimeElapsedColumn(), RateColumn(),
            console=console, redirect_stdout=False, redirect_stderr=False,
            refresh_per_second=4)
        self._rows: dict[tuple[str, str], _Counts] = {}
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def count(self, task: str, part: str, *, resources: int = 0, requests: int = 0,
              errors: int = 0) -> None:
        with self._lock:  # connectors' threads report API calls
            if (task, ALL) not in self._rows:
                self._collapse_done()
                self._row(task, ALL)
            for key in ((task, ALL), (task, part)):
                row = self._rows.get(key) or self._row(*key)
                row.resources += resources
                row.requests += requests
                row.errors += errors
                self.progress.update(row.task, completed=row.resources,
                                     resources=row.resources, requests=row.requests,
                                     errors=row.errors)

    def _row(self, task: str, part: str) -> _Counts:
        row = _Counts(self.progress.add_task(_description(task if part == ALL else "", part),
                                             total=None, resources=0, requests=0, errors=0))
        self._rows[(task, part)] = row
        return row

    def _collapse_done(self) -> None:
        """A new task begins: the tasks done keep their totals row only, so that an
        organisation of many accounts stays within the screen."""
        for key in [k for k in self._rows if k[0] in self._done and k[1] != ALL]:
            self.progress.remove_task(self._rows.pop(key).task)

    def done(self, task: str, status: str) -> None:
        with self._lock:
            for (name, _), row in self._rows.items():
                if name == task:
                    self.progress.update(row.task, total=row.resources or 1,
                                         completed=row.resources or 1)
                    self.progress.stop_task(row.task)
            total = self._rows.get((task, ALL)) or self._row(task, ALL)
            self.progress.update(total.task, description=_description(task, status))
            self.progress.stop_task(total.task)
            self._done.add(task)


def _description(task: str, part: str) -> str:
    """A row's name: the task (a long one shortened in the middle) on its totals row, then
    the part or, once done, the task's status."""
    return f"{shorten_middle(cell(task), NAME_WIDTH):<{NAME_WIDTH}} {cell(part):<14}"


class _Above:
    """A text stream whose lines are printed above the live rows."""

    def __init__(self, console: Console, stream: TextIO) -> None:
        self.console, self.stream, self._pending = console, stream, ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            self.console.print(Text(line), soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.console.print(Text(self._pending), soft_wrap=True)
            self._pending = ""

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.stream.fileno()


def wanted(quiet: bool) -> bool:
    """Progress is shown on a terminal's stderr, unless --quiet or the terminal cannot move
    its cursor (TERM=dumb: each refresh would be printed anew)."""
    return (not quiet and terminal(sys.stderr).width is not None
            and os.environ.get("TERM", "") != "dumb")


@contextmanager
def live_progress(quiet: bool) -> Iterator[LiveProgress | None]:
    """A LiveProgress on stderr while the block runs, or None (not a terminal, --quiet)."""
    if not wanted(quiet):
        yield None
        return
    shown = terminal(sys.stderr)
    raw = underlying(sys.stderr)
    console = Console(file=raw, color_system="standard" if shown.colour else None,
                      no_color=not shown.colour, force_terminal=True, highlight=False,
                      markup=False, emoji=False)
    live = LiveProgress(console)
    saved = sys.stdout, sys.stderr
    handlers = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]
    above = TerminalStream(_Above(console, raw))  # type: ignore[arg-type]
    for handler in handlers:
        handler.setStream(above)
    sys.stderr = above
    if terminal(sys.stdout).width is not None:  # the same screen: above the rows too
        sys.stdout = TerminalStream(_Above(console, raw))  # type: ignore[arg-type]
    try:
        with live.progress:
            yield live
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
        for handler in handlers:
            handler.setStream(saved[1])
