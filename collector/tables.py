"""The one table renderer of the command line (on rich).

On a terminal a table fits its width: columns that hold keys (`Column(fit="middle")`) lose the
middle of long values (`arn:aws:iam::1234…/role/very-long`, start and end are what tell keys
apart), prose columns (`fit="wrap"`) wrap, and the others keep their values whole; a table
that cannot fit even then is laid out as records, a block of lines per row. In a pipe
nothing is shortened, so that grep and scripts see every value in full. Colour only on a
terminal, and never with NO_COLOR set (to any value) or TERM=dumb. Every cell is escaped by
safe_output.cell, so the only escapes written are the renderer's own colours.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from collector.safe_output import cell, underlying

Fit = Literal["keep", "middle", "wrap"]
ELLIPSIS = "…"
# Between two columns.
GAP = 2
# A shortened key keeps at least this much of itself; prose wraps no narrower than this.
NARROWEST = 12
# Prose wraps to READABLE before any key is shortened, keys to RECOGNISABLE before prose
# narrows further.
READABLE, RECOGNISABLE = 24, 32
# Result and control statuses, coloured alike everywhere.
STATUS_STYLES = {"pass": "green", "fail": "bold red", "error": "red", "stale": "yellow",
                 "unknown": "yellow", "manual": "cyan", "OVERDUE": "bold red",
                 "current": "green", "complete": "green", "partial": "yellow",
                 "failed": "bold red", "interrupted": "yellow", "active": "green",
                 "expired": "yellow", "revoked": "dim"}


@dataclass(frozen=True)
class Column:
    """`fit`: keep (never shortened), middle (a key: shortened in the middle), wrap (prose).
    `styles`: a cell value -> its rich style on a colour terminal (statuses)."""

    header: str
    fit: Fit = "keep"
    justify: Literal["left", "right"] = "left"
    styles: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Terminal:
    """How output to one stream looks: `width` None is a pipe or file (nothing shortened)."""

    width: int | None
    colour: bool


def terminal(stream: TextIO | None = None) -> Terminal:
    """What `stream` (default stdout) is: a terminal of some width, with or without colour."""
    raw = underlying(stream if stream is not None else sys.stdout)
    try:
        tty = raw.isatty()
    except (AttributeError, ValueError, OSError):
        tty = False
    if not tty:
        return Terminal(None, False)
    colour = "NO_COLOR" not in os.environ and os.environ.get("TERM", "") != "dumb"
    return Terminal(shutil.get_terminal_size().columns, colour)


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells: its start, an ellipsis, its end."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    room = width - 1
    head_room = room - room // 2
    head, used = [], 0
    for char in text:
        size = cell_len(char)
        if used + size > head_room:
            break
        head.append(char)
        used += size
    tail, tail_room = [], room - used
    for char in reversed(text):
        size = cell_len(char)
        if size > tail_room:
            break
        tail.append(char)
        tail_room -= size
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))


def _floor(column: Column, values: list[str]) -> int:
    """How narrow a column may become on a terminal."""
    header = cell_len(column.header)
    if column.fit == "keep":
        return max([header, *map(cell_len, values)])
    if column.fit == "wrap":
        longest_word = max((cell_len(w) for v in values for w in v.split()), default=0)
        return max(header, min(longest_word, NARROWEST))
    return max(header, NARROWEST)


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]],
                  width: int | None) -> list[int]:
    """Each column's width: its widest value; on a terminal narrower than that, prose wraps
    down to a readable width first (it loses nothing), then keys lose their middles down to a
    recognisable width, then both narrow to their floors. The widest narrows first."""
    values = [[row[i] for row in rows] for i in range(len(columns))]
    widths = [max([cell_len(c.header), *map(cell_len, v)]) for c, v in zip(columns, values,
                                                                          strict=True)]
    if width is None:
        return widths
    excess = sum(widths) + GAP * (len(columns) - 1) - width
    floors = [_floor(c, v) for c, v in zip(columns, values, strict=True)]
    roomy = [max(f, READABLE if c.fit == "wrap" else RECOGNISABLE)
             for c, f in zip(columns, floors, strict=True)]
    for fit, least in (("wrap", roomy), ("middle", roomy), ("wrap", floors),
                       ("middle", floors)):
        narrowing = [i for i, c in enumerate(columns) if c.fit == fit]
        while excess > 0:
            slack = [i for i in narrowing if widths[i] > least[i]]
            if not slack:
                break
            widest = max(slack, key=lambda i: widths[i])
            others = [widths[i] for i in slack if i != widest]
            # Down to the next widest at once, as far as the excess and the floor allow.
            step = max(1, widths[widest] - max(others, default=0))
            step = min(step, excess, widths[widest] - least[widest])
            widths[widest] -= step
            excess -= step
    return widths  # if still too wide, render() lays the rows out as records


# A line's trailing padding, before any closing style codes.
_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")


def render(columns: Sequence[Column], rows: Iterable[Sequence[object]],
           shown: Terminal | None = None) -> str:
    """The table as text for `shown`, without a final newline; by default as wide as stdout
    and without colour (the text is printed through the escaping stream; print_table writes
    colour)."""
    shown = shown or Terminal(terminal().width, False)
    cells = [[cell(v) for v in row] for row in rows]
    for row in cells:
        if len(row) != len(columns):
            raise ValueError(f"a table row has {len(row)} cells for {len(columns)} columns")
    widths = column_widths(columns, cells, shown.width)
    if shown.width is None:
        return _plain(columns, cells, widths)
    if sum(widths) + GAP * (len(columns) - 1) > shown.width:
        return _records(columns, cells, shown)
    table = Table(box=None, padding=(0, GAP, 0, 0), pad_edge=False, show_edge=False,
                  collapse_padding=True, header_style="bold" if shown.colour else "")
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column.header, justify=column.justify, no_wrap=column.fit != "wrap",
                         overflow="fold", width=width)
    for row in cells:
        table.add_row(*(_styled(value, column, width) for value, column, width in
                        zip(row, columns, widths, strict=True)))
    buffer = io.StringIO()
    total = sum(widths) + GAP * len(columns)
    console = Console(file=buffer, width=total, color_system="standard" if shown.colour else None,
                      force_terminal=shown.colour, no_color=not shown.colour, highlight=False,
                      markup=False, emoji=False, legacy_windows=False, soft_wrap=False)
    console.print(table)
    return "\n".join(_TRAILING.sub(r"\1", line) for line in buffer.getvalue().splitlines())


def _records(columns: Sequence[Column], cells: list[list[str]], shown: Terminal) -> str:
    """A table too wide for the terminal even at its floors, as kubectl describes: each row a
    block of `header  value` lines, the first column as the block's title. Keys lose their
    middle to fit and prose wraps; nothing else is cut."""
    label = max(cell_len(c.header) for c in columns[1:]) if len(columns) > 1 else 0
    room = max(NARROWEST, (shown.width or 0) - label - 2 * GAP)
    lines: list[str] = []
    for row in cells:
        if lines:
            lines.append("")
        lines.append(_styled_text(row[0], columns[0], shown, shown.width or room))
        for column, value in zip(columns[1:], row[1:], strict=True):
            parts = (textwrap.wrap(value, room) or [""]) if column.fit == "wrap" else [value]
            for n, part in enumerate(parts):
                head = column.header if n == 0 else ""
                lines.append(" " * GAP + _pad(head, label, "left") + " " * GAP
                             + _styled_text(part, column, shown, room))
    return "\n".join(line.rstrip() for line in lines)


def _styled_text(value: str, column: Column, shown: Terminal, width: int) -> str:
    """A cell as _styled makes it, written out: in colour codes on a colour terminal."""
    text = _styled(value, column, width)
    if not shown.colour or not text.style:
        return text.plain
    buffer = io.StringIO()
    Console(file=buffer, color_system="standard", force_terminal=True, highlight=False,
            markup=False, emoji=False, soft_wrap=True).print(text, end="")
    return buffer.getvalue()


def _plain(columns: Sequence[Column], cells: list[list[str]], widths: list[int]) -> str:
    """A pipe's table: nothing wraps and nothing is coloured, so no layout engine is needed
    (rich takes seconds for 10,000 rows; this, milliseconds)."""
    def line(values: Sequence[str]) -> str:
        return (" " * GAP).join(
            _pad(v, w, c.justify) for v, w, c in zip(values, widths, columns, strict=True)
        ).rstrip()
    return "\n".join([line([c.header for c in columns]), *map(line, cells)])


def _pad(value: str, width: int, justify: str) -> str:
    room = " " * (width - cell_len(value))
    return room + value if justify == "right" else value + room


def _styled(value: str, column: Column, width: int) -> Text:
    text = shorten_middle(value, width) if column.fit == "middle" else value
    return Text(text, style=column.styles.get(value, ""))


def print_table(columns: Sequence[Column], rows: Iterable[Sequence[object]],
                out: TextIO | None = None) -> None:
    """Render and write the table to `out` (default stdout). Colour codes bypass the stream's
    escaping (every value in them was escaped cell by cell)."""
    out = out if out is not None else sys.stdout
    shown = terminal(out)
    text = render(columns, rows, shown) + "\n"
    (underlying(out) if shown.colour else out).write(text)
