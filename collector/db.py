"""Engines for the evidence store (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from collector import migrate

log = logging.getLogger("annexa.db")
T = TypeVar("T")

# How long the end of a run waits for a PostgreSQL server that went away (a restart, a
# failover) to come back, so that the run is recorded and sealed rather than left to the next.
RECONNECT_WITHIN = 120.0

# The writer sends its batches in pipeline mode (libpq 14) and a seal streams a source's state
# in chunks (libpq 17). psycopg[binary] ships a recent libpq; a psycopg built on an older
# system libpq would fail only at the first collection.
LIBPQ_NEEDED = 170000


class UnsupportedDriver(RuntimeError):
    """The PostgreSQL driver cannot do what the evidence store needs."""


class DatabaseUnavailable(RuntimeError):
    """The configured database cannot be used: its URL, dialect, driver, server or file."""


# The dialects that the schema and its migrations are written for.
DIALECTS = ("sqlite", "postgresql")


def engine_for(url: str, *, check_schema: bool = True) -> Engine:
    """An engine that has connected once: DatabaseUnavailable names what is wrong otherwise."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailable(
            "database: not a database URL such as sqlite:///annexa.db or "
            "postgresql+psycopg://user@host/db") from None
    shown = f"database {parsed.render_as_string(hide_password=True)}"
    if parsed.get_backend_name() not in DIALECTS:
        raise DatabaseUnavailable(f"{shown}: unknown dialect {parsed.get_backend_name()!r}; "
                                  f"the evidence store is one of: {', '.join(DIALECTS)}")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"{shown}: no such driver ({_one_line(exc)})") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        _require_libpq()
    try:
        engine.connect().close()
    except DBAPIError as exc:
        raise DatabaseUnavailable(f"{shown}: cannot be opened: {_one_line(exc.orig)}") from None
    if check_schema:
        migrate.require_current(engine)
    return engine


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def describe(exc: BaseException) -> str:
    """A database error in one line, in the driver's words, without SQLAlchemy's statement,
    parameters and links."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {_one_line(exc.orig)}"
    return f"{type(exc).__name__}: {_one_line(exc)}"


def connection_lost(exc: BaseException) -> bool:
    """The PostgreSQL server ended the session or refused a new one: it is restarting, failing
    over or shutting down. SQLite's operational errors (locked, full) are no such thing. The
    writer speaks to psycopg directly, so its errors come unwrapped."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig
    import psycopg

    return isinstance(exc, psycopg.OperationalError)


def once_reachable(work: Callable[[], T], *, within: float = RECONNECT_WITHIN) -> T:
    """`work()`, done again while the database connection is lost, until the server is back or
    `within` seconds have passed (then the last error is raised). `work` must be safe to
    repeat: each attempt is its own transaction."""
    deadline = time.monotonic() + within
    delay = 0.25
    while True:
        try:
            return work()
        except DBAPIError as exc:
            if not connection_lost(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("the database connection was lost (%s); trying again in %.1f s",
                        describe(exc), delay)
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _require_libpq() -> None:
    from psycopg import pq

    have = pq.version()
    if have < LIBPQ_NEEDED:
        raise UnsupportedDriver(
            f"PostgreSQL needs libpq {LIBPQ_NEEDED // 10000} or later, and this psycopg uses "
            f"libpq {have // 10000}.{have % 10000}: install psycopg[binary], which ships one")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (the API, metrics) work while a collection writes.
    cur = dbapi_conn.cursor()
    # Takes effect only when the file is new: 16 KiB pages write a collection's many index
    # entries with fewer page splits and WAL frames (about a tenth faster at 100k resources).
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # A checkpoint copies the WAL into the database and syncs it. A collection rewrites the
    # same index pages batch after batch; checkpointing every 160 MB of WAL (10,000 pages of
    # 16 KiB) instead of every 16 MB copies each of them fewer times: 1M resources went from
    # 142 to 120 s. The WAL file may grow that large.
    cur.execute("PRAGMA wal_autocheckpoint=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
