"""Locks kept in the database itself, so that they hold across processes and machines: one
run of a source in progress at a time, and one chain link made at a time.

A source's run must be alone: two runs of one source writing at once close each other's
intervals, and a run sealed while another still writes gets a Merkle root that misses rows
(the ledger then looks altered, or counts results twice). The chain lock orders seals: each
takes the newest link as its predecessor.

PostgreSQL: advisory locks, which end with their connection, so a killed holder frees them.
SQLite (one host): a row of `run_locks` naming the holder's host, pid and process start time;
a row whose process is gone is taken over."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from collector.db import connection_lost
from collector.schema import RunLock, now

LOCKS = RunLock.__table__
# Advisory lock keys: (class, object) pairs of 32-bit integers, this class Annexa's.
_SOURCE_CLASS = 0x414E5801  # "ANX" 1
_CHAIN_CLASS = 0x414E5802
_POLL = 0.2  # seconds between tries while waiting for a busy source


class SourceBusy(RuntimeError):
    """Another process is collecting the source now."""


def _start_ticks(pid: int) -> str | None:
    """The process's start time since boot (clock ticks), or None when it does not exist: a
    pid alone may have been reused since the lock was taken."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return None


def holder_id(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def _alive(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's process cannot be judged from here: assume it lives
    if not Path("/proc").is_dir():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return _start_ticks(int(pid)) == ticks


@contextmanager
def source_lock(engine: Engine, source: str, wait: float = 0.0) -> Iterator[None]:
    """Hold `source` for one run. Waits up to `wait` seconds for another holder to finish,
    then raises SourceBusy naming it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            _pg_acquire(conn, source, wait)
            try:
                yield
            finally:
                _pg_release(conn, source)
        return
    me = holder_id()
    _row_acquire(engine, source, me, wait)
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(LOCKS.delete().where(LOCKS.c.source == source, LOCKS.c.holder == me))


def _pg_release(conn: Connection, source: str) -> None:
    try:
        conn.execute(sa.text("SELECT pg_advisory_unlock(:c, hashtext(:s))"),
                     {"c": _SOURCE_CLASS, "s": source})
        conn.commit()
    except sa.exc.DBAPIError as exc:
        # A session's advisory locks end with it: a server that ended the session (a
        # restart) has released the lock already.
        if not connection_lost(exc):
            raise


def _pg_acquire(conn: Connection, source: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        got = conn.scalar(sa.text("SELECT pg_try_advisory_lock(:c, hashtext(:s))"),
                          {"c": _SOURCE_CLASS, "s": source})
        conn.commit()
        if got:
            return
        if time.monotonic() >= deadline:
            raise SourceBusy(f"source {source!r} is being collected by another process "
                             f"({_running(conn, source)}); nothing was collected")
        time.sleep(_POLL)


def _row_acquire(engine: Engine, source: str, me: str, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        # Read first: a live holder is seen without asking for SQLite's write lock, which
        # other runs hold for a moment at each of their writes.
        with engine.connect() as conn:
            row = conn.execute(sa.select(LOCKS.c.holder, LOCKS.c.acquired_at)
                               .where(LOCKS.c.source == source)).first()
        if row is None or not _alive(row.holder):
            try:
                with engine.begin() as conn:
                    if row is not None:
                        conn.execute(LOCKS.delete().where(LOCKS.c.source == source,
                                                          LOCKS.c.holder == row.holder))
                    conn.execute(LOCKS.insert().values(source=source, holder=me,
                                                       acquired_at=now()))
                return
            except IntegrityError:
                continue  # another process took it between the read and the write
        if time.monotonic() >= deadline:
            host, pid = row.holder.split(":")[:2]
            raise SourceBusy(f"source {source!r} is being collected by another process "
                             f"(process {pid} on {host} since "
                             f"{row.acquired_at.isoformat(timespec='seconds')}); nothing was "
                             "collected")
        time.sleep(_POLL)


def _running(conn: Connection, source: str) -> str:
    from collector.chain import RUNS

    row = conn.execute(sa.select(RUNS.c.id, RUNS.c.started_at).where(
        RUNS.c.source == source, RUNS.c.seq.is_(None)).order_by(RUNS.c.id.desc()).limit(1)
    ).first()
    conn.commit()
    return (f"run {row.id} started {row.started_at.isoformat(timespec='seconds')}" if row
            else "starting")


@contextmanager
def chain_lock(engine: Engine) -> Iterator[Connection]:
    """A transaction in which this process alone links a run into the chain. Waits for
    another that does."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            with conn.begin():
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:c, 0)"),
                             {"c": _CHAIN_CLASS})
                yield conn
            return
        # SQLite: take the database's write lock now, not at the first write, so that two
        # seals never both read the same newest link (the busy timeout waits for the other).
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
