"""`annexa status`: each source's last and next run and evidence freshness, the service's own
health, and its exit code, against the moto server, SQLite and PostgreSQL, and a running
service."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from checks.registry import load_all
from collector import config as configuration
from collector.chain import RUNS
from collector.cli import main
from collector.db import engine_for
from collector.demo.emulators import google_workspace as fake
from collector.ledger import load_or_create_signer
from collector.service import Service
from tests.aws_org_support import MANAGEMENT, guard_organization, org_options, organization
from tests.google_workspace_support import source_options, workspace_server
from tests.helpers import annexa, config_file, socket_closed_port, write_config

__all__ = ["workspace_server"]  # fixture

TENANT = fake.Tenant(id="C03status", domain="example.net", name="Status Co", org_units=(),
                     people=(fake.Person("alice", super_admin=True), fake.Person("bob")))


def _status(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, dict[str, Any]]:
    code, out, err = annexa(capsys, config, "status", "--format", "json")
    assert code in (0, 1), err
    return code, json.loads(out)


def _edit(config: Path, **settings: Any) -> Path:
    doc = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**doc, **settings}))
    return config


def _runs(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        rows = result.all() if result.returns_rows else []
    engine.dispose()
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_status_after_a_complete_run(tmp_path, database_url, moto_url, capsys):
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    assert annexa(capsys, config, "verify")[0] == 0

    code, doc = _status(capsys, config)
    assert code == 0 and doc["ok"] is True and doc["problems"] == []
    (source,) = doc["sources"]
    (run,) = _runs(database_url, "SELECT id, seq, chain_hash, resources, started_at FROM runs "
                                 "WHERE source = 'aws-test'")
    last = source["last_run"]
    assert (last["run_id"], last["seq"], last["status"]) == (run.id, run.seq, "complete")
    assert last["chain_head"] == f"{run.seq}:{run.chain_hash}", "the whole hash in JSON"
    assert last["resources"] == run.resources > 0 and last["errors"] == 0
    assert last["duration_seconds"] >= 0 and last["message"] is None
    started = datetime.fromisoformat(last["started_at"])
    assert datetime.fromisoformat(source["next_run_at"]) == started + timedelta(hours=1), \
        "schedule 1h: an hour after the last run fired, as the service schedules it"
    assert source["next_run_overdue"] is False
    assert source["freshness"] == "fresh" and source["evidence_at"] == last["finished_at"]
    assert 0 <= source["evidence_age_seconds"] < 48 * 3600
    assert doc["freshness_window_seconds"] == 48 * 3600 and doc["people"] is None
    service = doc["service"]
    assert service["store"]["reachable"] is True and service["store"]["migrated"] is True
    assert service["store"]["revision"] == "0008"
    verify = service["last_verify"]
    assert verify["ok"] is True and verify["by"] == "cli" and verify["problem"] is None
    assert verify["runs"] == 1 and verify["head_seq"] == run.seq

    code, out, _ = annexa(capsys, config, "status")
    assert code == 0
    assert "annexa status as of " in out and ": ok" in out.splitlines()[0]
    row = next(line for line in out.splitlines() if line.startswith("aws-test"))
    assert "complete" in row and f"#{run.seq}:{run.chain_hash[:13]}" in row
    assert "in 59m" in row or "in 1h" in row
    assert row.split()[-2] == "fresh"
    assert "verify   intact; 1 runs verified" in out and "by cli" in out


def test_status_names_a_failed_run_and_exits_1(tmp_path, moto_url, capsys):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    config = write_config(tmp_path, database, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    with socket_closed_port() as port:
        write_config(tmp_path, database, f"http://127.0.0.1:{port}", regions=["us-east-1"],
                     max_attempts=1)
        assert annexa(capsys, config, "collect")[0] == 1

    code, doc = _status(capsys, config)
    assert code == 1 and doc["ok"] is False
    (source,) = doc["sources"]
    assert source["last_run"]["status"] == "failed"
    assert source["last_run"]["message"].startswith("SourceUnreachable: sts:GetCallerIdentity")
    assert source["freshness"] == "fresh", "the earlier complete run's evidence is still fresh"
    assert source["evidence_at"] < source["last_run"]["finished_at"]
    (problem,) = doc["problems"]
    assert problem.startswith(f"aws-test: last run #{source['last_run']['seq']} failed: "
                              "SourceUnreachable: sts:GetCallerIdentity failed")
    code, out, _ = annexa(capsys, config, "status")
    assert code == 1 and "1 problem(s)" in out.splitlines()[0]
    assert "problems:\n  aws-test: last run #2 failed: SourceUnreachable" in out


def test_stale_evidence_exits_1(tmp_path, moto_url, capsys):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    config = _edit(write_config(tmp_path, database, moto_url, regions=["us-east-1"]),
                   freshness="1h")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    assert _status(capsys, config)[0] == 0
    # The run is made to have been sealed three hours ago (its header no longer verifies, which
    # status does not ask).
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        (started, finished), = conn.execute(sa.text("SELECT started_at, finished_at FROM runs"))
        conn.execute(sa.text("UPDATE runs SET started_at = :s, finished_at = :f"),
                     {"s": _hours_before(started, 3), "f": _hours_before(finished, 3)})
    engine.dispose()

    code, doc = _status(capsys, config)
    assert code == 1
    (source,) = doc["sources"]
    assert source["freshness"] == "stale" and source["evidence_age_seconds"] > 3 * 3600
    assert source["next_run_overdue"] is True, "schedule 1h, last run 3h ago"
    assert doc["problems"] == [f"aws-test: evidence is stale: the newest is from "
                               f"{source['evidence_at'][:19]}+00:00"]
    code, out, _ = annexa(capsys, config, "status")
    row = next(line for line in out.splitlines() if line.startswith("aws-test"))
    assert code == 1 and row.split()[-2:] == ["stale", "3h"] and "overdue 2h" in row


def _hours_before(value: Any, hours: int) -> str:
    """A SQLite UTC timestamp as stored (naive ISO text), `hours` earlier."""
    at = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return (at - timedelta(hours=hours)).isoformat(sep=" ")


def test_a_source_never_collected_exits_1(tmp_path, moto_url, capsys):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", moto_url,
                          schedule="30 2 * * *")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, doc = _status(capsys, config)
    assert code == 1
    (source,) = doc["sources"]
    assert source["last_run"] is None and source["freshness"] == "never"
    assert source["evidence_at"] is None and source["next_run_at"] is None
    assert source["next_run_overdue"] is True, "the service collects it at once"
    assert doc["problems"] == ["aws-test: no evidence collected yet"]
    assert doc["service"]["last_verify"] is None
    code, out, _ = annexa(capsys, config, "status")
    row = next(line for line in out.splitlines() if line.startswith("aws-test"))
    assert code == 1 and "at once (never run)" in row and row.split()[-2:] == ["never", "-"]
    assert "never verified" in out


def test_cron_schedule_next_run_follows_the_last_run(tmp_path, moto_url, capsys):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", moto_url,
                          regions=["us-east-1"], schedule="15 4 * * *")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    (source,) = _status(capsys, config)[1]["sources"]
    started = datetime.fromisoformat(source["last_run"]["started_at"])
    following = datetime.fromisoformat(source["next_run_at"])
    assert (following.hour, following.minute, following.second) == (4, 15, 0)
    assert timedelta(0) < following - started <= timedelta(days=1)


def test_api_and_metrics_listening_while_the_service_runs_and_not_after(
        tmp_path, moto_url, capsys):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", moto_url,
                          regions=["us-east-1"])
    api, metrics = _free_port(), _free_port()
    _edit(config, api={"host": "127.0.0.1", "port": api},
          metrics={"host": "127.0.0.1", "port": metrics})
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    cfg = configuration.load(str(config))
    load_all()
    engine = engine_for(cfg.database)
    done = threading.Event()
    service = Service(cfg, engine, load_or_create_signer(cfg.signing_key),
                      on_run=lambda _: done.set(), verify_every=None)
    thread = threading.Thread(target=service.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        assert done.wait(120), "the service ran no collection at start"
        code, running = _status(capsys, config)
    finally:
        service.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert code == 0, running["problems"]
    assert running["service"]["api"] == {"host": "127.0.0.1", "port": api, "enabled": True,
                                         "listening": True, "detail": "listening"}
    assert running["service"]["metrics"]["listening"] is True

    # The service's own verify is recorded as the service's.
    service.verify_ledger()
    engine.dispose()
    code, stopped = _status(capsys, config)
    assert code == 0
    for name in ("api", "metrics"):
        listener = stopped["service"][name]
        assert listener["listening"] is False
        assert listener["detail"].startswith("connection refused"), listener
    assert stopped["service"]["last_verify"]["by"] == "service"
    assert stopped["service"]["last_verify"]["ok"] is True
    code, out, _ = annexa(capsys, config, "status")
    assert f"api      127.0.0.1:{api}: not listening: connection refused" in out
    assert f"metrics  127.0.0.1:{metrics}: not listening: connection refused" in out

    _edit(config, api={"enabled": False})
    code, out, _ = annexa(capsys, config, "status")
    assert "api      127.0.0.1:8443: disabled (api.enabled: false)" in out


def test_a_broken_ledger_at_the_last_verify_exits_1(tmp_path, moto_url, capsys):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    config = write_config(tmp_path, database, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    _runs(database, "UPDATE runs SET resources = resources + 1")
    assert annexa(capsys, config, "verify")[0] == 1
    code, doc = _status(capsys, config)
    assert code == 1 and doc["service"]["last_verify"]["ok"] is False
    (problem,) = doc["problems"]
    assert problem.startswith("the ledger was found BROKEN by the last verify")
    assert doc["service"]["last_verify"]["problem"] in problem


def test_an_unreachable_store_exits_2_naming_the_cause(tmp_path, moto_url, capsys):
    with socket_closed_port() as port:
        config = write_config(tmp_path, f"postgresql+psycopg://annexa@127.0.0.1:{port}/annexa",
                              moto_url)
        code, out, err = annexa(capsys, config, "status")
    assert code == 2 and out == ""
    assert f"database postgresql+psycopg://annexa@127.0.0.1:{port}/annexa: cannot be opened" \
        in err and "Connection refused" in err
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'empty.db'}", moto_url)
    code, _, err = annexa(capsys, config, "status")
    assert code == 2 and "run `annexa db upgrade` first" in err


def test_organisation_accounts_are_shown_under_their_source(tmp_path, org_server, org_url,
                                                            capsys):
    org = organization(org_url, {"good": None, "locked": None})
    guard_organization(org)
    locked = org.accounts["locked"]
    org_server.gate.denied.add(locked)
    config = config_file(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", {
        "name": "aws-org", "kind": "aws", "schedule": "1h", **org_options(org_url)})
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 1

    code, doc = _status(capsys, config)
    assert code == 1
    (source,) = doc["sources"]
    assert source["name"] == "aws-org" and source["last_run"]["status"] == "complete"
    units = {u["name"]: u for u in source["units"]}
    assert set(units) == {f"aws-org/{a}" for a in (MANAGEMENT, org.accounts["good"], locked)}
    assert units[f"aws-org/{locked}"]["last_run"]["status"] == "failed"
    assert units[f"aws-org/{org.accounts['good']}"]["freshness"] == "fresh"
    first = min(u["last_run"]["started_at"] for u in units.values())
    fired = datetime.fromisoformat(first)
    assert datetime.fromisoformat(source["next_run_at"]) == fired + timedelta(hours=1), \
        "the collection fired when its first account started"
    assert {u["next_run_at"] for u in units.values()} == {source["next_run_at"]}
    assert [p.split(":")[0] for p in doc["problems"]] == [f"aws-org/{locked}"] * 2, \
        "the failed account: its run failed and it has no evidence"

    code, out, _ = annexa(capsys, config, "status")
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("aws-org "))
    assert all(line.startswith("  aws-org/") for line in lines[at + 1:at + 4])
    assert "failed" in next(line for line in lines if line.startswith(f"  aws-org/{locked}"))

    # The locked account leaves: retired, it is shown as such and counts for nothing.
    org.client("organizations").remove_account_from_organization(AccountId=locked)
    assert annexa(capsys, config, "collect")[0] == 0
    code, doc = _status(capsys, config)
    assert code == 0, doc["problems"]
    retired = next(u for u in doc["sources"][0]["units"] if u["name"] == f"aws-org/{locked}")
    assert retired["last_run"]["status"] == "retired" and retired["freshness"] == "retired"
    assert retired["next_run_at"] is None and retired["next_run_overdue"] is False
    code, out, _ = annexa(capsys, config, "status")
    row = next(line for line in out.splitlines() if line.startswith(f"  aws-org/{locked}"))
    assert row.split()[2] == "retired" and row.split()[-3:] == ["-", "retired", "-"]


def test_the_people_join_has_a_row_of_its_own(tmp_path, moto_url, workspace_server, capsys):
    workspace_server.reset()
    workspace_server.add(TENANT)
    config = config_file(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", {
        "name": "workspace", "kind": "google_workspace", "schedule": "1h",
        "customer": TENANT.id, **source_options(workspace_server, tmp_path, TENANT,
                                                admin="alice")})
    _edit(config, people={"authoritative": "workspace", "schedule": "2h"})
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, doc = _status(capsys, config)
    assert code == 1 and doc["people"]["freshness"] == "never"
    assert doc["problems"] == ["workspace: no evidence collected yet",
                               "annexa-people: no evidence collected yet"]

    assert annexa(capsys, config, "collect")[0] == 0
    code, doc = _status(capsys, config)
    assert code == 0, doc["problems"]
    people = doc["people"]
    assert (people["name"], people["kind"], people["schedule"]) == ("annexa-people", "people",
                                                                    "2h")
    assert people["last_run"]["status"] == "complete" and people["freshness"] == "fresh"
    assert datetime.fromisoformat(people["next_run_at"]) == datetime.fromisoformat(
        people["last_run"]["started_at"]) + timedelta(hours=2)
    code, out, _ = annexa(capsys, config, "status")
    assert ["annexa-people", "people", "complete"] in [line.split()[:3]
                                                        for line in out.splitlines()]


def test_hostile_text_in_a_run_message_is_escaped(tmp_path, capsys):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    with socket_closed_port() as port:
        config = write_config(tmp_path, database, f"http://127.0.0.1:{port}",
                              regions=["us-east-1"], max_attempts=1)
        assert annexa(capsys, config, "db", "upgrade")[0] == 0
        assert annexa(capsys, config, "collect")[0] == 1
    _runs(database, "UPDATE runs SET message = :m", m="boom\x1b[2J\u202eevil\nforged line")
    code, out, _ = annexa(capsys, config, "status")
    assert code == 1 and "\x1b" not in out and "\u202e" not in out
    assert "boom\\x1b[2J\\u202eevil\\x0aforged line" in out, "on its own line, escaped"
    code, doc = _status(capsys, config)
    assert doc["sources"][0]["last_run"]["message"] == "boom\x1b[2J\u202eevil\nforged line"


def _on_a_terminal(config: Path, **env: str) -> tuple[int, str]:
    """`annexa status` in a process of its own whose stdout is a pseudo-terminal 120 wide."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    environ = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
    process = subprocess.Popen(
        [sys.executable, "-m", "collector.cli", "--config", str(config), "status"],
        stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        env={**environ, "TERM": "xterm", "PYTHONPATH": str(Path(__file__).parent.parent),
             **env})
    os.close(slave)
    chunks = []
    for _ in range(10_000):  # until the process closes its end
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no writer is left
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return process.wait(60), b"".join(chunks).decode()


def test_on_a_terminal_statuses_are_coloured_unless_no_color(tmp_path):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    with socket_closed_port() as port:
        config = write_config(tmp_path, database, f"http://127.0.0.1:{port}",
                              regions=["us-east-1"], max_attempts=1)
        assert main(["--config", str(config), "db", "upgrade"]) == 0
        assert main(["--config", str(config), "collect"]) == 1
    code, coloured = _on_a_terminal(config)
    assert code == 1 and "\x1b[1;31mfailed" in coloured, coloured
    code, plain = _on_a_terminal(config, NO_COLOR="1")
    assert code == 1 and "\x1b" not in plain and "failed" in plain


def test_a_run_not_sealed_yet_is_shown_and_counts_for_nothing(tmp_path, moto_url, capsys):
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    config = write_config(tmp_path, database, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    assert _status(capsys, config)[1]["sources"][0]["unsealed_since"] is None
    # What a collection in progress, or one whose process was killed, leaves.
    started = datetime.now(UTC) - timedelta(hours=5)
    engine = sa.create_engine(database)
    with engine.begin() as conn:
        conn.execute(RUNS.insert().values(source="aws-test", kind="aws", started_at=started,
                                          status="running", resources=0, results=0,
                                          errors=0))
    engine.dispose()
    code, doc = _status(capsys, config)
    assert code == 0 and doc["sources"][0]["unsealed_since"] == started.isoformat()
    assert doc["sources"][0]["last_run"]["status"] == "complete", "the last sealed run"
    code, out, _ = annexa(capsys, config, "status")
    assert "aws-test: a run started 5h ago is not sealed yet" in out


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_verify_that_cannot_record_still_verifies_and_says_so(tmp_path, database_url,
                                                                moto_url, capsys):
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    read_only = database_url + "?options=-c%20default_transaction_read_only%3Don"
    write_config(tmp_path, read_only, moto_url, regions=["us-east-1"])
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0 and "ledger intact: 1 runs" in out
    assert "warning: this verification was not recorded for `annexa status`: " in out
    assert "read-only transaction" in out
    assert _status(capsys, config)[1]["service"]["last_verify"] is None


def test_a_screen_of_status_in_tmux(tmp_path, moto_url):
    """The screen an operator sees, 120 by 30, kept in tests/output/screens/status.txt."""
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    config = write_config(tmp_path, database, moto_url, regions=["us-east-1"])
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert main(["--config", str(config), "collect"]) == 0
    assert main(["--config", str(config), "verify"]) == 0
    tmux = ["tmux", "-L", f"annexa-status-{os.getpid()}", "-f", "/dev/null"]
    root = Path(__file__).parent.parent
    signal = f"tmux -L annexa-status-{os.getpid()} wait-for"
    # The pane stays until the screen is captured.
    # The pane's own size, not a COLUMNS inherited from whoever started the tmux server.
    command = (f"cd {root} && env -u COLUMNS -u LINES NO_COLOR=1 PYTHONPATH={root} "
               f"{sys.executable} -m collector.cli "
               f"--config {config} status; {signal} -S done; {signal} captured")
    subprocess.run([*tmux, "new-session", "-d", "-x", "120", "-y", "30", command], check=True,
                   timeout=30)
    try:
        subprocess.run([*tmux, "wait-for", "done"], check=True, timeout=120)
        screen = subprocess.run([*tmux, "capture-pane", "-p"], check=True, timeout=30,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "wait-for", "-S", "captured"], timeout=30)
        subprocess.run([*tmux, "kill-server"], timeout=30)
    lines = screen.rstrip("\n").splitlines()
    assert lines[0].startswith("annexa status as of ") and lines[0].endswith(": ok")
    assert any(line.startswith("aws-test ") and "complete" in line for line in lines)
    assert max(map(len, lines)) <= 120
    shots = root / "tests" / "output" / "screens"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "status.txt").write_text(screen)


def test_health_lines_wrap_under_their_label_on_a_terminal_and_stay_whole_in_a_pipe():
    from collector.status_table import _fitted

    line = "  store    sqlite:////var/lib/annexa/annexa.db: reachable, schema at revision 0008"
    wrapped = _fitted([line], 40)
    assert all(len(part) <= 40 for part in wrapped) and len(wrapped) > 1
    assert all(part.startswith(" " * 11) for part in wrapped[1:]), wrapped
    assert wrapped[0].startswith("  store    sqlite:")
    assert "".join(p.strip() for p in wrapped).replace(" ", "") == line.replace(" ", "")
    assert _fitted([line], None) == [line]
