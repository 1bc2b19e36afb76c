"""What the fault tests need around the product: a PostgreSQL server of their own (so that
restarting it disturbs no other test), a collector in a process of its own that can be killed,
and ways to hold that process at a chosen phase of its run (an API answer that waits, a table
lock, the chain lock) and to know when it is held there."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

# Bounds of every wait here: the phases are reached within seconds on a loaded machine.
PHASE_TIMEOUT = 60.0
POLL = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*argv: str) -> list[str]:
    """PostgreSQL refuses to run as root: its tools run as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version in sorted(Path("/usr/lib/postgresql").glob("*"), reverse=True):
        if (version / "bin" / name).exists():
            return str(version / "bin" / name)
    raise RuntimeError(f"{name} is not installed (the postgresql package provides it)")


@dataclass
class PrivatePostgres:
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(_as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                                    "-l", str(self.data / "server.log"), *args),
                       check=True, capture_output=True, timeout=90)

    def start(self) -> None:
        self._ctl("-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1", "start")

    def restart(self) -> None:
        """A fast restart: every session is ended and its transaction rolled back, as when the
        server is restarted under a running service."""
        self._ctl("-m", "fast", "-o", f"-p {self.port} -k {self.data} "
                  "-c listen_addresses=127.0.0.1", "restart")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")

    def fresh_database(self, name: str) -> str:
        admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A server in a directory of its own under /tmp: pytest's own temporary directories
    are closed to the postgres user."""
    parent = Path(tempfile.mkdtemp(prefix="annexa-pg-"))
    data = parent / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        for path in (parent, data):
            shutil.chown(path, "postgres")
    subprocess.run(_as_postgres(_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U",
                                "postgres", "--no-sync"),
                   check=True, capture_output=True, timeout=120)
    server = PrivatePostgres(data, _free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(parent, ignore_errors=True)


def collector(config: Path, *args: str) -> subprocess.Popen[str]:
    """`annexa collect` in a process of its own, as the service or an operator runs it."""
    return subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config),
                             "collect", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_until_blocked(engine: sa.Engine, wait_event: str | None = None) -> None:
    """Until a session other than ours waits for a lock (a table lock, or with `wait_event`
    'advisory' an advisory lock): the collector is then held where the test wants it."""
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND pid <> pg_backend_pid() AND (CAST(:event AS text) IS NULL "
                    "OR wait_event = :event)")
    deadline = time.monotonic() + PHASE_TIMEOUT
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(query, {"event": wait_event}).scalar():
                return
            conn.rollback()
            time.sleep(POLL)
    raise AssertionError(f"no session waited for a lock within {PHASE_TIMEOUT} s")
