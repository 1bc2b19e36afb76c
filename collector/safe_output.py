"""Every terminal line, log record and CSV cell that evidence can reach goes through here.

Whoever can write a bucket policy's Sid or a tag value can put escape sequences (screen clears,
title changes, hidden text), bidi overrides (text that reads other than it is) and line breaks
(forged lines) into our output, and formulas into the spreadsheets that open our CSV files.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Characters a terminal acts on instead of showing: C0, DEL, C1, the line and paragraph
# separators, and the bidi embeddings, overrides, isolates and marks.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F,
             0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


# For one value: every control, line breaks and tabs included, so a value stays on its line.
_VALUE = {code: _escape(code) for code in _CONTROLS}
# For whole output streams, a backstop behind the values: line breaks and tabs are the
# output's own layout. `\uXXXX` is also JSON's escape of the same character, so JSON printed
# through it stays valid and means the same.
_STREAM = {code: f"\\u{code:04x}" for code in _CONTROLS if code not in (0x09, 0x0A)}


def printable(text: str) -> str:
    """`text` with every control character shown as an escape (ESC as `\\x1b`, RLO as
    `\\u202e`); ordinary unicode is kept."""
    return text.translate(_VALUE)


def cell(value: object) -> str:
    """A value for a column of a terminal table."""
    return printable(str(value))


class TerminalStream:
    """A text stream that escapes controls on their way to `stream` (stdout, stderr)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text.translate(_STREAM))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def underlying(stream: TextIO) -> TextIO:
    """The stream a TerminalStream writes to (what colour codes, escaped cell by cell before,
    are written to), or `stream` itself."""
    return stream.stream if isinstance(stream, TerminalStream) else stream


class SafeFormatter(logging.Formatter):
    """Escapes each record's message (a log line cannot be forged with a line break in a value);
    the traceback of a record keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        shown = logging.makeLogRecord(record.__dict__)
        shown.message = printable(record.message)
        return super().formatMessage(shown)


# Spreadsheets read a cell that begins with these as a formula (OWASP, CSV injection); tab and
# carriage return begin one too in some of them.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: a value that would start a formula, even after
    leading spaces, gets a leading single quote (OWASP); None is empty."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START):
        return "'" + text
    return text


class CsvWriter:
    """csv.writer whose every cell is a csv_cell."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(v) for v in row])


# What every LogRecord holds; anything else on a record is an `extra` field of its own.
_RECORD_FIELDS = {*logging.makeLogRecord({}).__dict__, "message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line (`--log-format json`): ts, level, logger, message, the record's
    extra fields, and exc (its traceback) if any. Controls inside values are JSON escapes, as
    the stream backstop writes them, so a line cannot be forged or act on a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        doc.update((k, v) for k, v in record.__dict__.items() if k not in _RECORD_FIELDS)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str).translate(_STREAM)
