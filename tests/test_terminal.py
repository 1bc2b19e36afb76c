"""The command line on a terminal and off it: tables that fit the width (keys shortened in the
middle, full in a pipe and in JSON), colour only on a terminal and never under NO_COLOR, live
progress on stderr of a terminal only, and JSON log lines."""

from __future__ import annotations

from rich.cells import cell_len

from collector.tables import Column, Terminal, column_widths, render, shorten_middle

KEY = "arn:aws:iam::123456789012:role/service-role/a-very-long-role-name-that-goes-on-and-on"
COLUMNS = (Column("id"), Column("key", fit="middle"), Column("title", fit="wrap"),
           Column("n", justify="right"))
ROWS = [("A.5.1", KEY, "Policies for information security, reviewed at planned intervals", 3),
        ("A.8.24", "short", "Use of cryptography", 12)]


def test_a_long_key_loses_its_middle_and_keeps_both_ends():
    short = shorten_middle(KEY, 30)
    assert cell_len(short) == 30 and "…" in short
    assert short.startswith("arn:aws:iam::1") and short.endswith("and-on")
    assert shorten_middle("short", 30) == "short"
    assert cell_len(shorten_middle("東京東京東京東京東京", 7)) <= 7, "wide characters count twice"


def test_a_table_fits_the_terminal_and_prose_wraps_before_keys_shorten():
    text = render(COLUMNS, ROWS, Terminal(80, colour=False))
    lines = text.splitlines()
    assert max(map(cell_len, lines)) <= 80, text
    assert lines[0].split() == ["id", "key", "title", "n"]
    assert KEY not in text and "arn:aws:iam::" in text and "on-and-on" in text
    assert "short" in text and "12" in text
    assert all(line == line.rstrip() for line in lines), "no trailing padding"
    wide = render(COLUMNS, ROWS, Terminal(200, colour=False))
    assert KEY in wide, "a key that fits is whole"


def test_in_a_pipe_nothing_is_shortened():
    text = render(COLUMNS, ROWS, Terminal(None, colour=False))
    assert KEY in text
    assert "Policies for information security, reviewed at planned intervals" in text
    assert len(text.splitlines()) == 3, "one line per row"


def test_cells_are_escaped_and_colour_is_only_the_renderers_own():
    hostile = [("A.5.1", "x\x1b]0;owned\x07\u202ey", "line\nbreak", 1)]
    plain = render(COLUMNS, hostile, Terminal(80, colour=False))
    assert "\x1b" not in plain and "\u202e" not in plain and "\x07" not in plain
    assert "x\\x1b]0;owned\\x07\\u202ey" in plain and "line\\x0abreak" in plain
    coloured = render((Column("status", styles={"fail": "red"}),), [("fail",)],
                      Terminal(80, colour=True))
    assert "\x1b[" in coloured and "fail" in coloured


def test_widths_never_narrow_a_kept_column_nor_a_key_below_its_floor():
    columns = (Column("id"), Column("key", fit="middle"))
    assert column_widths(columns, [("A.5.1", KEY)], 20) == [5, 13], "exactly 20 with the gap"
    assert column_widths(columns, [("A.5.1", KEY)], 10) == [5, 12], "too narrow: floors"
