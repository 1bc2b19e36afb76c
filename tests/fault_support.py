"""What the fault tests need around the product: a PostgreSQL server of their own (so that
restarting it disturbs no other test), a collector in a process of its own that can be killed,
and ways to hold that process at a chosen phase of its run (an API answer that waits, a table
lock, the chain lock) and to know when it is held there."""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
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


class CuttingProxy:
    """A loopback TCP proxy in front of `target` that misbehaves as networks do: the
    connections numbered in `cut` are reset (RST) once `cut_after` bytes of the answer have
    passed, those in `stall` are accepted and never answered. The TLS inside passes through
    untouched. Connections are numbered from 1 in the order they are accepted."""

    def __init__(self, target: tuple[str, int], *, cut: Callable[[int], bool],
                 cut_after: int = 0, stall: Callable[[int], bool] = lambda _n: False) -> None:
        self.target, self.cut, self.cut_after, self.stall = target, cut, cut_after, stall
        self.accepted = 0
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="cutting-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        # Closing alone would not wake the accept() in progress; a shutdown does (Linux).
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                sock.close()
        self._thread.join(PHASE_TIMEOUT)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                number = self.accepted
                self._open.append(client)
            if self.stall(number):
                continue  # held open, never answered, until close()
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open.append(upstream)
            limit = self.cut_after if self.cut(number) else None
            threading.Thread(target=self._relay, args=(client, upstream, limit),
                             daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket, limit: int | None) -> None:
        """Both directions in one thread, so that a cut closes the socket at once (a socket
        that another thread is reading from stays open until that read returns)."""
        passed = 0
        try:
            while True:
                readable, _, _ = select.select([client, upstream], [], [], PHASE_TIMEOUT)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        continue
                    if limit is not None and passed + len(data) >= limit:
                        client.sendall(data[:limit - passed])
                        with self._lock:
                            self.cuts += 1
                        # A reset, not an orderly close: the peer learns of it as a network
                        # failure.
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
                        return
                    client.sendall(data)
                    passed += len(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()
