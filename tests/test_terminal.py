"""The command line on a terminal and off it: tables that fit the width (keys shortened in the
middle, full in a pipe and in JSON), colour only on a terminal and never under NO_COLOR, live
progress on stderr of a terminal only, and JSON log lines."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pexpect
import pytest
import requests
from rich.cells import cell_len

from checks.registry import load_all
from collector.safe_output import JsonFormatter
from collector.tables import Column, Terminal, column_widths, render, shorten_middle
from tests.helpers import write_config
from tests.okta_support import OktaFake, okta_fake, okta_server
from tests.okta_support import write_config as okta_config
from tests.test_output import HOSTILE, assert_shown_safely

__all__ = ["okta_fake", "okta_server"]

ROOT = Path(__file__).resolve().parents[1]
SCREENS = ROOT / "tests" / "output" / "screens"
# Select Graphic Rendition: colour and bold. Any escape at all: CSI, OSC and the rest.
SGR = re.compile(r"\x1b\[[0-9;]*m")
ANY_ESCAPE = re.compile(r"\x1b[\[\]()=>?]?[0-9;?]*[A-Za-z]?")

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
    coloured = render(COLUMNS, [*hostile, ("A.5.2", HOSTILE, HOSTILE, 2)],
                      Terminal(80, colour=True))
    assert SGR.sub("", coloured).count("\x1b") == 0, "only the renderer's own colour codes"
    assert_shown_safely(SGR.sub("", coloured))


def test_a_table_too_wide_even_at_its_floors_becomes_records_that_fit():
    columns = (Column("source", fit="middle"), *(Column(f"column {n}") for n in range(8)),
               Column("title", fit="wrap"))
    prose = " ".join(f"word{n}" for n in range(40))
    row = (KEY, *(f"value-{n}-kept-whole" for n in range(8)), prose)
    text = render(columns, [row, ("second", *("-" * 8), "short")], Terminal(80, colour=False))
    lines = text.splitlines()
    assert max(map(cell_len, lines)) <= 80, text
    assert lines[0] == KEY[:80] or shorten_middle(KEY, 80) == lines[0]
    assert all(f"column {n}  value-{n}-kept-whole" in text for n in range(8))
    assert "second" in lines
    assert re.findall(r"word\d+", text) == [f"word{n}" for n in range(40)], "prose wraps whole"
    assert KEY in render(columns, [row], Terminal(None, colour=False)), "whole in a pipe"


def test_widths_never_narrow_a_kept_column_nor_a_key_below_its_floor():
    columns = (Column("id"), Column("key", fit="middle"))
    assert column_widths(columns, [("A.5.1", KEY)], 20) == [5, 13], "exactly 20 with the gap"
    assert column_widths(columns, [("A.5.1", KEY)], 10) == [5, 12], "too narrow: floors"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    return {**env, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", **extra}


def in_pty(*args: str, columns: int = 120, **env: str) -> tuple[int, str]:
    """The real CLI on a pseudo-terminal (stdout and stderr both): its exit code and screen
    output as the terminal received it (\\r\\n line ends made \\n)."""
    child = pexpect.spawn(sys.executable, ["-m", "collector.cli", *args], env=_env(**env),
                          dimensions=(40, columns), encoding="utf-8", timeout=240)
    output = child.read()
    child.close()
    return child.exitstatus, output.replace("\r\n", "\n")


def piped(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", *args], capture_output=True,
                          text=True, env=_env(**env), timeout=240, check=False)


@pytest.fixture(scope="module")
def account(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database and a configured source: a moto account with a few buckets."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    for n in range(3):
        s3.create_bucket(Bucket=f"terminal-{n}")
    tmp = tmp_path_factory.mktemp("terminal")
    config = write_config(tmp, f"sqlite:///{tmp / 'annexa.db'}", moto_server,
                          regions=["us-east-1"])
    done = piped("--config", str(config), "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return config


def test_collect_shows_live_progress_on_a_terminal(account):
    code, screen = in_pty("--config", str(account), "collect")
    assert code == 0, screen
    text = ANY_ESCAPE.sub("", screen)
    assert re.search(r"aws-test +complete +[1-9]\d* resources +[1-9]\d* requests +0 errors "
                     r"+\d+:\d\d:\d\d +\S+/s", text), f"the source's totals row:\n{text}"
    assert re.search(r" s3 +[1-9]\d* resources +[1-9]\d* requests ", text), "a row per service"
    assert "aws-test: complete" in text or "aws-test: partial" in text, "the summary follows"
    assert SGR.search(screen), "a colour terminal gets colour"


def test_no_progress_in_a_pipe_nor_with_quiet(account):
    done = piped("--config", str(account), "collect")
    assert done.returncode == 0, done.stderr
    assert " requests " not in done.stdout + done.stderr
    assert "\x1b" not in done.stdout + done.stderr
    assert done.stdout.startswith("aws-test: ")
    code, screen = in_pty("--config", str(account), "--quiet", "collect")
    assert code == 0, screen
    assert " requests " not in screen and "\x1b" not in screen
    assert screen.startswith("aws-test: ")


def test_no_colour_under_no_color_nor_a_dumb_terminal(account):
    for env in ({"NO_COLOR": ""}, {"NO_COLOR": "1"}, {"TERM": "dumb"}):
        code, screen = in_pty("--config", str(account), "collect", **env)
        assert code == 0, screen
        assert not SGR.search(screen), (env, screen)
        if "TERM" in env:
            assert " requests " not in screen, "no live rows where the cursor cannot move"
        else:
            assert " requests " in screen, "progress, without colour"
        code, screen = in_pty("--config", str(account), "controls", **env)
        assert code == 0 and "\x1b" not in screen, (env, screen)
    code, screen = in_pty("--config", str(account), "controls")
    assert SGR.search(screen), "the same table in colour without NO_COLOR"


def test_a_table_fits_80_columns_with_keys_shortened_in_the_middle():
    longest = max(load_all(), key=len)
    code, screen = in_pty("checks", columns=80, COLUMNS="80", NO_COLOR="1")
    assert code == 0, screen
    lines = screen.splitlines()
    assert max(map(cell_len, lines)) <= 80, max(lines, key=cell_len)
    assert longest not in screen
    head, tail = longest[:10], longest[-6:]
    assert any(head in line and "…" in line and tail in line.split("…", 1)[1]
               for line in lines), f"{longest} shortened in its middle"
    done = piped("checks", "--format", "json", COLUMNS="80")
    assert longest in {c["id"] for c in json.loads(done.stdout)}, "JSON holds it whole"
    done = piped("checks", COLUMNS="80")
    assert longest in done.stdout and "…" not in done.stdout, "a pipe gets it whole"


def test_log_format_json_gives_one_object_a_line(account):
    done = piped("--config", str(account), "--log-format", "json", "-v", "collect")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines, "-v logs the collection"
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= record.keys(), record
        assert record["logger"].startswith("annexa")


def test_json_log_lines_escape_what_evidence_controls_and_keep_extras():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("annexa.test_terminal")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("resource %s", HOSTILE, extra={"source": "aws-prod", "count": 3})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("reading")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, "a line break in a value or a traceback stays in its line"
    assert_shown_safely(out.getvalue())
    first, second = map(json.loads, lines)
    assert first["message"] == f"resource {HOSTILE}", "decoded, the message is as it was"
    assert first["source"] == "aws-prod" and first["count"] == 3 and first["level"] == "WARNING"
    assert "ValueError: boom" in second["exc"]


def _tmux_screen(name: str, command: str) -> str:
    """Run `command` in a detached 120x30 tmux session of a server of its own, and capture the
    pane once it has finished (the pane waits for the capture)."""
    tmux = ["tmux", "-L", f"annexa-test-{os.getpid()}"]
    done, captured = f"{name}-done", f"{name}-captured"
    script = f"{command}; tmux -L annexa-test-{os.getpid()} wait-for -S {done}; " \
             f"tmux -L annexa-test-{os.getpid()} wait-for {captured}"
    env = _env()
    subprocess.run([*tmux, "new-session", "-d", "-s", name, "-x", "120", "-y", "30", script],
                   check=True, env=env, timeout=30)
    try:
        subprocess.run([*tmux, "wait-for", done], check=True, env=env, timeout=240)
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", name], check=True,
                                env=env, capture_output=True, text=True, timeout=30).stdout
        subprocess.run([*tmux, "wait-for", "-S", captured], check=True, env=env, timeout=30)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, env=env, timeout=30)
    SCREENS.mkdir(parents=True, exist_ok=True)
    (SCREENS / f"{name}.txt").write_text(screen)
    return screen


def test_screens_captured_with_tmux(account):
    cli = f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m collector.cli --config {account}"
    screen = _tmux_screen("collect", f"{cli} collect")
    assert "aws-test" in screen and " requests " in screen, screen
    screen = _tmux_screen("controls", f"{cli} controls | head -28")
    assert "Annex A posture" in screen


def test_export_and_soa_load_show_progress_on_a_terminal_only(account, tmp_path):
    assert piped("--config", str(account), "collect").returncode == 0
    soa = ROOT / "config" / "soa.yaml"
    code, screen = in_pty("--config", str(account), "soa", "load", str(soa))
    assert code == 0, screen
    text = ANY_ESCAPE.sub("", screen)
    assert re.search(r" read +93 resources ", text), text
    assert re.search(r" stored +93 resources ", text), "a first load stores every control"
    bundle = tmp_path / "bundle.zip"
    code, screen = in_pty("--config", str(account), "export", "--from", "2000-01-01",
                          "--to", "2100-01-01", "--out", str(bundle))
    assert code == 0, screen
    text = ANY_ESCAPE.sub("", screen)
    assert re.search(r"export +written +[1-9]\d* resources ", text), text
    assert re.search(r" evidence files +[1-9]\d* resources ", text), text
    assert re.search(r" aws-test +[1-9]\d* resources ", text), "versions read per source"
    done = piped("--config", str(account), "export", "--from", "2000-01-01", "--to",
                 "2100-01-01", "--out", str(bundle))
    assert done.returncode == 0 and " requests " not in done.stdout + done.stderr, done.stderr
    done = piped("--config", str(account), "soa", "load", str(soa))
    assert done.returncode == 0 and " requests " not in done.stdout + done.stderr
    assert "SoA unchanged" in done.stdout


def test_an_https_source_counts_its_pages(tmp_path, okta_fake: OktaFake):
    """Okta through the HTTPS fake, three objects a page: each page is a request."""
    config = okta_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", okta_fake)
    assert piped("--config", str(config), "db", "upgrade").returncode == 0
    code, screen = in_pty("--config", str(config), "collect")
    assert code == 0, screen
    text = ANY_ESCAPE.sub("", screen)
    # The last frame of each row: the final counts.
    (*_, totals) = re.findall(r"okta-test +complete +(\d+) resources +(\d+) requests", text)
    (*_, service) = re.findall(r" okta +(\d+) resources +(\d+) requests", text)
    stored = re.search(r"okta-test: complete in \S+, run \d+ sealed as #\d+; (\d+) resources",
                       text)
    assert stored, text
    assert totals == service, "one service: its row is the source's"
    assert int(totals[0]) == int(stored[1]), "every resource stored was counted"
    assert int(totals[1]) == okta_fake.api.total_calls, "every page the fake served"


def test_progress_keeps_only_the_totals_of_tasks_done_once_another_begins():
    """An organisation of many accounts: each account's service rows give way to its totals
    row when the next account begins, so the rows stay within the screen."""
    from rich.console import Console

    from collector.progress_display import LiveProgress

    screen = io.StringIO()
    console = Console(file=screen, width=120, color_system=None)
    live = LiveProgress(console)
    live.count("aws-org/111111111111", "s3", resources=2, requests=3)
    live.count("aws-org/111111111111", "iam", requests=1, errors=1)
    live.done("aws-org/111111111111", "partial")
    live.count("aws-org/222222222222", "s3", resources=1, requests=1)
    console.print(live.progress.make_tasks_table(live.progress.tasks))
    # Without the elapsed time and the rate, which depend on the clock.
    rows = [" ".join(line.split()[:-2]) for line in screen.getvalue().splitlines()]
    assert rows == [
        "✓ aws-org/111111111111 partial 2 resources 4 requests 1 errors",
        "⠋ aws-org/222222222222 all 1 resources 1 requests 0 errors",
        "⠋ s3 1 resources 1 requests 0 errors"], rows


def test_log_lines_print_above_the_progress_rows(account):
    code, screen = in_pty("--config", str(account), "-v", "--log-format", "json", "collect",
                          NO_COLOR="1")
    assert code == 0, screen
    text = ANY_ESCAPE.sub("", screen)
    records = [json.loads(line[line.index("{"):]) for line in text.splitlines()
               if '"logger": "annexa' in line]
    assert records and all(r["logger"].startswith("annexa") for r in records), text
    assert re.search(r"aws-test +complete +[1-9]\d* resources", text), text
