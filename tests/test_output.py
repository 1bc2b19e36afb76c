"""Output that evidence controls: escape sequences, bidi overrides and line breaks written into
the audited account reach no terminal or log as they are, no CSV cell becomes a formula, and a
reader that goes away ends a command quietly. The CLI runs as a real process."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
import yaml

from collector.safe_output import CsvWriter, SafeFormatter, csv_cell, printable
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parents[1]
# What a terminal acts on, one of each family: OSC (window title), CSI (clear screen, colour),
# BEL, the 8-bit CSI (C1), DEL, the bidi override and isolate, the line separator, CR and LF.
HOSTILE = ("\x1b]0;owned\x07\x1b[2J\x1b[1;31m\x9b2J\x7f\u202egnp.exe\u2066x\u2069"
           "\u2028LS\rCR\nPASS forged line")
RAW = ["\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\u2066", "\u2069", "\u2028", "\r"]
BUCKET = "hostile-sid"


def annexa(config: Path | None, *args: str, stdout: int | None = subprocess.PIPE
           ) -> subprocess.CompletedProcess[str]:
    """The real CLI in a process of its own, with this worktree's code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "collector.cli"]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run([*argv, *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          encoding="utf-8", env=env, timeout=300, check=False)


def assert_shown_safely(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the output as it is"


@pytest.fixture(scope="module")
def hostile(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One collection of an account whose bucket policy's Sid holds HOSTILE (and so does the
    failing result's reason)."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": HOSTILE, "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    tmp = tmp_path_factory.mktemp("hostile")
    config = write_config(tmp, f"sqlite:///{tmp / 'annexa.db'}", moto_server,
                          regions=["us-east-1"])
    for args in (("db", "upgrade"), ("collect",)):
        done = annexa(config, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return config


def test_printable_escapes_every_control_and_keeps_ordinary_text():
    assert printable("\x1b[2J") == "\\x1b[2J"
    assert printable("a\u202eb\u2028c\x9bd\x7fe\tf\ng\rh\x00") == \
        "a\\u202eb\\u2028c\\x9bd\\x7fe\\x09f\\x0ag\\x0dh\\x00"
    assert printable("Zoë, 東京, ✓, 🙂, café") == "Zoë, 東京, ✓, 🙂, café"
    assert_shown_safely(printable(HOSTILE))
    assert "\n" not in printable(HOSTILE)


def test_snapshot_table_shows_the_sid_escaped_on_its_own_line(hostile):
    done = annexa(hostile, "snapshot", "--format", "table")
    assert done.returncode == 0, done.stderr
    assert_shown_safely(done.stdout)
    assert "\\x1b]0;owned\\x07\\x1b[2J" in done.stdout, "the Sid is shown, escaped"
    assert not any(line.startswith("PASS forged line") for line in done.stdout.splitlines()), \
        "a line break in evidence cannot start a line of its own"
    assert "gnp.exe" in done.stdout


@pytest.mark.parametrize("args", [
    ("snapshot", "--format", "json"),
    ("snapshot", "--format", "json", "--failing-only"),
    ("controls", "--format", "json"),
])
def test_json_on_a_terminal_is_escaped_and_still_means_the_same(hostile, args):
    done = annexa(hostile, *args)
    assert done.returncode == 0, done.stderr
    assert_shown_safely(done.stdout)
    assert any(HOSTILE in text for text in _strings(json.loads(done.stdout))), \
        "decoded, the JSON holds the Sid as it was"


def _strings(doc: object) -> list[str]:
    """Every string value anywhere in a JSON document."""
    found: list[str] = []
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def test_oscal_to_stdout_keeps_its_unicode_and_escapes_the_controls(hostile):
    done = annexa(hostile, "export", "--format", "oscal", "--from", "2000-01-01",
                  "--to", "2100-01-01")
    assert done.returncode == 0, done.stderr
    assert_shown_safely(done.stdout)
    assert any(HOSTILE in text for text in _strings(json.loads(done.stdout))), \
        "the JSON still holds the Sid"


def test_table_commands_print_no_raw_control(hostile):
    for args in (("controls",), ("controls", "--control", "A.8.3"), ("verify",),
                 ("snapshot", "--failing-only"), ("snapshot", "--summary")):
        done = annexa(hostile, *args)
        assert done.returncode == 0, (args, done.stderr)
        assert_shown_safely(done.stdout + done.stderr)


def test_log_records_are_escaped_one_to_a_line():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(SafeFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("annexa.test_output")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("resource %s", HOSTILE)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("reading %s", "x\x1b[2J")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("WARNING resource \\x1b]0;owned")
    assert not any(line.startswith("PASS") for line in lines)
    assert lines[1] == "ERROR reading x\\x1b[2J"
    assert lines[2] == "Traceback (most recent call last):", "a traceback keeps its lines"
    assert_shown_safely(out.getvalue())


def test_the_cli_logs_through_the_escaping_formatter():
    """main() sets up logging: a record logged while it runs is escaped."""
    code = ("import logging, sys; from collector import cli; "
            "cli.cmd_checks = lambda cfg, args: logging.getLogger('annexa.x').warning("
            f"'value %s', {HOSTILE!r}) or 0; sys.exit(cli.main(['checks']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "value \\x1b]0;owned" in done.stderr
    assert_shown_safely(done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("value", "shown"), [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("   =1", "'   =1"),
    (" \t @x", "' \t @x"),
    ("plain text", "plain text"),
    ("a=b", "a=b"),
    ("", ""),
    (None, ""),
    (12, "12"),
])
def test_csv_cells_never_start_a_formula(value, shown):
    assert csv_cell(value) == shown


def test_csv_writer_quotes_every_formula_cell():
    out = io.StringIO()
    CsvWriter(out).writerow(["=1", "ok", "@x", "-y", None])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=1", "ok", "'@x", "'-y", ""]


FORMULAS = {"A.5.1": ("=HYPERLINK(\"http://evil.example\",\"open\")", "=1+1@example.com"),
            "A.5.2": ("@SUM(1,2)", "+cmd@example.com"),
            "A.5.3": ("  -2+5", "-x@example.com"),
            "A.7.6": ("\t=cmd", "=facilities@example.com")}


def test_soa_csv_neutralises_formulas_in_justification_and_owner(tmp_path):
    soa = {"controls": {}}
    for control, (justification, owner) in FORMULAS.items():
        soa["controls"][control] = {"applicable": True, "justification": justification,
                                    "owner": owner, "implementation": "implemented"}
    soa_file = tmp_path / "soa.yaml"
    soa_file.write_text(yaml.safe_dump(soa))
    config = tmp_path / "annexa.yaml"
    config.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'annexa.db'}",
                                      "signing_key": str(tmp_path / "signing.key")}))
    for args in (("db", "upgrade"), ("soa", "load", str(soa_file))):
        done = annexa(config, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    done = annexa(config, "soa", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = {row["control"]: row for row in csv.DictReader(io.StringIO(done.stdout))}
    for control in FORMULAS:
        for column in ("justification", "owner"):
            assert rows[control][column].startswith("'"), (control, column, rows[control])
    assert rows["A.5.1"]["justification"] == "'" + FORMULAS["A.5.1"][0]
    assert rows["A.7.6"]["owner"] == "'=facilities@example.com"
    every_cell = [cell for row in csv.reader(io.StringIO(done.stdout)) for cell in row]
    assert not [c for c in every_cell if c.lstrip()[:1] in ("=", "+", "-", "@")]


def test_people_csv_neutralises_formulas():
    from collector.people.report import as_csv

    account = {"source": "=src", "key": "@key", "active": True, "privileged": True,
               "privileges": ["=admin", "x"], "mfa": False, "evidence": "-e"}
    report = {"people": [{"person": "+p@example.com", "status": "-active",
                          "accounts": [account]}]}
    (header, row) = list(csv.reader(io.StringIO(as_csv(report))))
    assert header[0] == "person"
    assert row[:4] == ["'+p@example.com", "'-active", "'=src", "'@key"]
    assert row[6] == "'=admin; x" and row[8] == "'-e"


# Long enough that the pipe's buffer cannot take it all: the writer meets the closed end.
@pytest.mark.parametrize("args", [("checks",), ("checks", "--format", "json"),
                                  ("controls",), ("snapshot",)])
def test_a_reader_that_goes_away_ends_the_command_quietly(hostile, args):
    read, write = os.pipe()
    os.close(read)
    try:
        done = annexa(hostile, *args, stdout=write)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert done.stderr == "", "no traceback, no 'Exception ignored'"


def test_head_through_a_real_shell_pipe(hostile):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in ("controls", "checks --format json", "snapshot --format json"):
        done = subprocess.run(
            ["bash", "-c", f"{sys.executable} -m collector.cli --config {hostile} {command} "
                           "| head -1; echo \"exit ${PIPESTATUS[0]}\""],
            capture_output=True, text=True, env=env, timeout=300, check=False)
        first, status = done.stdout.splitlines()
        assert first.strip(), command
        assert status in ("exit 0", "exit 141"), (command, done.stdout)
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
