"""The cluster: `annexa collect` with `queue:` enqueues an organisation's accounts on a real
Redis, `annexa worker` processes collect them into one PostgreSQL, and the result is the one
process's: same posture, same evidence, one chain that verifies. A worker process killed with
SIGKILL mid-run leaves a run sealed as interrupted, and the account is collected again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from collector.config import ConfigError, load
from tests.aws_org_support import MANAGEMENT, guard_organization, org_options, organization
from tests.conftest import PG_ADMIN_URL
from tests.helpers import annexa, config_file, controls_json

SOURCE = "aws-org"
ROOT = Path(__file__).parent.parent
POSTGRES = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
DEADLINE = 120  # seconds any one wait of these tests may take


@pytest.fixture
def broker() -> Iterator[str]:
    """A Redis database of its own on the shared server, emptied before and after."""
    number = random.randrange(8, 16)
    client = redis.Redis(host="127.0.0.1", port=6379, db=number)
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{number}"
    client.flushdb()
    client.close()


@pytest.fixture
def second_database() -> Iterator[str]:
    name = f"annexa_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _config(directory: Path, database_url: str, url: str, broker: str | None) -> Path:
    directory.mkdir(exist_ok=True)
    path = config_file(directory, database_url, {"name": SOURCE, "kind": "aws",
                                                 "schedule": "1h", **org_options(url)})
    if broker is not None:
        text = path.read_text() + f"queue:\n  broker: {broker}\n  wait: {DEADLINE}s\n"
        path.write_text(text)
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class Workers:
    def __init__(self, config: Path, count: int, concurrency: int, logs: Path) -> None:
        self.procs = [subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "--config", str(config), "worker",
             "--concurrency", str(concurrency)], env=_env(), cwd=ROOT,
            stdout=(logs / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT)
            for i in range(count)]

    def pool_children(self) -> list[int]:
        """The processes that run the tasks (children of the worker processes)."""
        out = []
        for proc in self.procs:
            for task in Path(f"/proc/{proc.pid}/task").iterdir():
                out += [int(pid) for pid in (task / "children").read_text().split()]
        return out

    def stop(self) -> None:
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    started: list[Workers] = []
    yield started
    for group in started:
        group.stop()


# Data that differs between any two collections: the organisation's member records name run
# ids and times, and moto's trail status gives the time it is read as the latest delivery.
_TIMED = ("aws.organizations.member", "aws.organizations.trail", "aws.cloudtrail.trail")


def _evidence(database_url: str) -> set[tuple[str, str, str, str]]:
    """The open resource versions: (source, kind, key, digest), digests of _TIMED left out."""
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT source, kind, key, digest FROM resource_versions WHERE valid_to_run IS "
            "NULL")).all()
    engine.dispose()
    return {(source, kind, key, "" if kind in _TIMED else digest)
            for source, kind, key, digest in rows}


def _posture(controls: list[dict]) -> dict[str, Any]:
    return {c["id"]: (c["status"], sorted((k["id"], k["status"], tuple(k["failing_resources"]))
                                          for k in c["checks"])) for c in controls}


def test_sqlite_refuses_a_queue(tmp_path):
    path = _config(tmp_path / "q", f"sqlite:///{tmp_path / 'a.db'}", "http://127.0.0.1:1",
                   "redis://127.0.0.1:6379/9")
    with pytest.raises(ConfigError, match="queue: workers on other machines cannot share a "
                                          "SQLite file"):
        load(str(path))


@POSTGRES
def test_the_cluster_collects_what_one_process_collects(
        tmp_path, database_url, second_database, org_url, broker, workers, capsys):
    org = organization(org_url, {"a": None, "b": "prod", "c": "prod"})
    guard_organization(org)
    org.client("iam", org.accounts["b"]).create_user(UserName="alice")
    alone = _config(tmp_path / "alone", second_database, org_url, None)
    queued = _config(tmp_path / "queued", database_url, org_url, broker)
    for config in (alone, queued):
        assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out_alone, _ = annexa(capsys, alone, "collect")
    assert code == 0

    workers.append(Workers(queued, count=2, concurrency=2, logs=tmp_path))
    code, out_queued, err = annexa(capsys, queued, "collect")
    assert code == 0, out_queued + err
    assert _evidence(database_url) == _evidence(second_database)
    assert len(_evidence(database_url)) > 10
    assert _posture(controls_json(capsys, queued)) == _posture(controls_json(capsys, alone))
    summary = [line.split(":")[0] for line in out_queued.splitlines() if line[:1] != " "]
    assert summary == [line.split(":")[0] for line in out_alone.splitlines()
                       if line[:1] != " "]
    assert summary[-1] == SOURCE
    assert annexa(capsys, queued, "verify")[0] == 0


def _wait(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {DEADLINE}s for {what}")


@POSTGRES
def test_a_worker_killed_mid_run_leaves_an_interrupted_run_and_the_account_is_redone(
        tmp_path, database_url, org_server, org_url, broker, workers, capsys):
    organization(org_url, {})
    config = _config(tmp_path / "queued", database_url, org_url, broker)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    group = Workers(config, count=1, concurrency=1, logs=tmp_path)
    workers.append(group)
    org_server.gate.delay = 0.05  # a run long enough to be caught in the middle
    collect = subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config),
                                "collect"], env=_env(), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    unit = f"{SOURCE}/{MANAGEMENT}"
    engine = sa.create_engine(database_url)

    def running() -> bool:
        with engine.connect() as conn:
            return bool(conn.scalar(sa.text(
                "SELECT COUNT(*) FROM runs WHERE source = :s AND seq IS NULL"), {"s": unit}))
    _wait("the account's run to start", running)
    children = _wait("the worker's pool process", group.pool_children)
    os.kill(children[0], signal.SIGKILL)
    org_server.gate.delay = 0.0
    out, _ = collect.communicate(timeout=DEADLINE)
    assert collect.returncode == 0, out
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT status, message FROM runs WHERE source = :s "
                                    "ORDER BY id"), {"s": unit}).all()
    engine.dispose()
    assert [status for status, _ in runs] == ["interrupted", "complete"], runs
    assert runs[0][1] == "the collecting process stopped before sealing"
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.fixture
def rabbitmq() -> Iterator[str]:
    """A RabbitMQ virtual host of its own on the shared server, deleted afterwards."""
    vhost = f"annexa_test_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True,
                   timeout=60)
    subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True, timeout=60)
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)


@POSTGRES
def test_on_rabbitmq_a_denied_account_fails_alone(
        tmp_path, database_url, org_server, org_url, rabbitmq, workers, capsys):
    org = organization(org_url, {"good": None, "locked": None})
    guard_organization(org)
    locked = org.accounts["locked"]
    org_server.gate.denied.add(locked)
    config = _config(tmp_path / "queued", database_url, org_url, rabbitmq)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    workers.append(Workers(config, count=2, concurrency=1, logs=tmp_path))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 1, out + err
    assert f"{SOURCE}/{locked}: failed" in out
    assert f"{SOURCE}/{org.accounts['good']}: complete" in out
    assert f"\n{SOURCE}: complete" in out
    collected = next(c for control in controls_json(capsys, config) for c in control["checks"]
                     if c["id"] == "aws-organizations.every_active_account_collected")
    assert collected["status"] == "fail"
    assert annexa(capsys, config, "verify")[0] == 0


class PrivateRedis:
    """A redis-server of this test's own on a free port, appending every write to its log,
    so that a restart keeps the queue."""

    def __init__(self, directory: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.directory), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        _wait("redis to answer", lambda: _pings(client))
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@POSTGRES
def test_a_broker_restart_loses_no_run_and_duplicates_nothing(
        tmp_path, database_url, org_server, org_url, workers, capsys):
    org = organization(org_url, {"a": None, "b": None, "c": None})
    guard_organization(org)
    broker = PrivateRedis(tmp_path)
    broker.start()
    try:
        config = _config(tmp_path / "queued", database_url, org_url,
                         f"redis://127.0.0.1:{broker.port}/0")
        assert annexa(capsys, config, "db", "upgrade")[0] == 0
        workers.append(Workers(config, count=1, concurrency=1, logs=tmp_path))
        org_server.gate.delay = 0.02
        collect = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
            env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        engine = sa.create_engine(database_url)

        def started() -> bool:
            with engine.connect() as conn:
                return bool(conn.scalar(sa.text(
                    "SELECT COUNT(*) FROM runs WHERE source LIKE 'aws-org/%'")))
        _wait("a first run to start", started)
        broker.stop()
        broker.start()
        org_server.gate.delay = 0.0
        out, _ = collect.communicate(timeout=DEADLINE)
        assert collect.returncode == 0, out
        with engine.connect() as conn:
            runs = conn.execute(sa.text("SELECT source, status FROM runs ORDER BY id")).all()
            twice = conn.scalar(sa.text(
                "SELECT COUNT(*) FROM (SELECT source, key FROM resource_versions WHERE "
                "valid_to_run IS NULL GROUP BY source, key HAVING COUNT(*) > 1) AS d"))
        engine.dispose()
        units = [source for source, _ in runs if source.startswith(f"{SOURCE}/")]
        assert sorted(units) == sorted(set(units)), f"a unit collected twice: {runs}"
        assert len(units) == 4 and {status for _, status in runs} == {"complete"}, runs
        assert twice == 0
        assert annexa(capsys, config, "verify")[0] == 0
    finally:
        broker.stop()


def test_the_broker_password_comes_from_the_environment(monkeypatch):
    from collector.cluster.app import broker_url

    monkeypatch.delenv("ANNEXA_BROKER_PASSWORD", raising=False)
    assert broker_url("redis://broker:6379/0") == "redis://broker:6379/0"
    monkeypatch.setenv("ANNEXA_BROKER_PASSWORD", "p@ss/w")
    assert broker_url("redis://broker:6379/0") == "redis://:p%40ss%2Fw@broker:6379/0"
    assert broker_url("amqp://annexa@broker/vh") == "amqp://annexa:p%40ss%2Fw@broker/vh"



def test_a_database_restart_under_the_cluster_loses_no_run_and_duplicates_nothing(
        tmp_path, org_server, org_url, broker, workers, capsys):
    from tests.fault_support import private_postgres

    org = organization(org_url, {"a": None, "b": None, "c": None})
    guard_organization(org)
    with private_postgres() as server:
        url = server.fresh_database("annexa_cluster")
        config = _config(tmp_path / "queued", url, org_url, broker)
        assert annexa(capsys, config, "db", "upgrade")[0] == 0
        workers.append(Workers(config, count=1, concurrency=2, logs=tmp_path))
        org_server.gate.delay = 0.05  # runs long enough for the restart to fall inside one
        collect = subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "--config", str(config), "collect"],
            env=_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        engine = sa.create_engine(url)

        def collecting() -> bool:
            with engine.connect() as conn:
                return bool(conn.scalar(sa.text(
                    "SELECT COUNT(*) FROM runs WHERE source LIKE 'aws-org/%' AND seq IS NULL")))
        _wait("a unit's run to start", collecting)
        org_server.gate.open.clear()  # its next API call waits: the run is in the middle
        engine.dispose()
        server.restart()
        org_server.gate.delay = 0.0
        org_server.gate.open.set()
        out, _ = collect.communicate(timeout=DEADLINE)
        # The waiting collect outlived the restart and reports every unit, as without one.
        assert "Traceback" not in out, out
        assert collect.returncode in (0, 1), out
        assert f"{SOURCE}/" in out, out
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            first = conn.execute(sa.text(
                "SELECT source, status, message, seq FROM runs ORDER BY id")).all()
        units = [run for run in first if run.source.startswith(f"{SOURCE}/")]
        assert all(run.seq is not None for run in first), f"a run left unsealed: {first}"
        failed = [run for run in units if run.status == "failed"]
        # The runs the restart cut are failed with the cause named; the others complete.
        assert failed, f"no run was cut by the restart: {first}"
        assert all((run.message or "").startswith("the database connection was lost: ")
                   for run in failed), failed
        assert {run.status for run in units} <= {"failed", "complete"}, units
        assert len({run.source for run in units}) == 4

        code, again, err = annexa(capsys, config, "collect")
        assert code == 0, again + err
        with engine.connect() as conn:
            latest = dict(conn.execute(sa.text(
                "SELECT source, status FROM runs WHERE id IN (SELECT MAX(id) FROM runs "
                "GROUP BY source)")).all())
            twice = conn.scalar(sa.text(
                "SELECT COUNT(*) FROM (SELECT source, key FROM resource_versions WHERE "
                "valid_to_run IS NULL GROUP BY source, key HAVING COUNT(*) > 1) AS d"))
        engine.dispose()
        assert set(latest.values()) == {"complete"} and len(latest) == 5, latest
        assert twice == 0
        assert annexa(capsys, config, "verify")[0] == 0
