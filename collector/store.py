"""Writes one run's evidence: blobs once per digest, resource versions and check results as
validity intervals. The only update anywhere is closing an interval (setting valid_to_run)."""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
import zstandard
from sqlalchemy import Connection

from collector.ledger import result_digest
from collector.model import ALL_REGIONS, CollectionError
from collector.schema import Blob, CheckResult, CollectionErrorRow, ResourceVersion

BLOBS = Blob.__table__
VERSIONS = ResourceVersion.__table__
RESULTS = CheckResult.__table__
ERRORS = CollectionErrorRow.__table__

log = logging.getLogger("annexa.store")

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_codecs = threading.local()
_CHUNK = 500  # keys per IN (...) lookup: well under SQLite's bound-parameter limit
# Statistics taken once a table holds rows keep their shape as it grows (keys stay unique,
# scaled by the table's size), so the lookups need them only when missing or far outgrown; an
# ANALYZE of a large table samples 30,000 rows.
ANALYZE_FACTOR = 16
SQLITE_COMMIT_EVERY = 8  # batches
# Results are written with the batch of resources they were judged from; only results with
# no resource behind them (scope checks, errors) beyond this many per resource of a batch make
# a batch of their own. A kind has far fewer checks, so a batch never splits between its
# resources and their results.
RESULTS_PER_BATCH = 16
SQLITE_RUN_CACHE_KIB = 65_536
# Per-connection temporary table of the open versions a run found unchanged.
SEEN = sa.Table("annexa_seen_versions", sa.MetaData(), sa.Column("id", sa.BigInteger))
_IDLE = 0  # libpq's PQTRANS_IDLE: no transaction open on the connection
# Ends the reason of a failure carried over a run that could not judge it again.
CARRIED = " (earlier evidence; not judged again: "


class _Driver:
    """The writer's hot statements at the DBAPI level: SQLAlchemy's per-row parameter handling
    costs more than the database does here.

    On PostgreSQL a run's batches are sent in pipeline mode: a batch's writes, in a
    transaction of their own, go out without waiting for the server, which works on them while
    the collector takes in the next batch; the next lookup waits for them, and raises what
    failed. So one thread keeps both cores busy, where a writer thread had to win the
    interpreter back after every round trip."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self._pipeline: Any = None
        self._types: dict[tuple[str, tuple[str, ...]], str] = {}

    def cursor(self) -> Any:
        return self.conn.connection.driver_connection.cursor()

    def queue(self) -> None:
        """Enter pipeline mode (PostgreSQL): from here on the caller opens and commits its own
        transactions, with BEGIN and COMMIT sent like any statement."""
        if not self.pg or self._pipeline is not None:
            return
        self.conn.commit()
        raw = self.conn.connection.driver_connection
        raw.autocommit = True
        self._pipeline = raw.pipeline()
        self._pipeline.__enter__()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One batch's writes, undone together if one fails and kept apart from the batches
        before it: on PostgreSQL a transaction sent with them, on SQLite (which commits every
        few batches) a savepoint inside the run's transaction."""
        if self.pg:
            self.cursor().execute("BEGIN")
            yield
            self.cursor().execute("COMMIT")
            return
        if not self.conn.connection.driver_connection.in_transaction:
            # Releasing a savepoint that opened the transaction would commit it.
            self.conn.exec_driver_sql("BEGIN")
        self.conn.exec_driver_sql("SAVEPOINT annexa_batch")
        try:
            yield
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK TO SAVEPOINT annexa_batch")
            raise
        finally:
            self.conn.exec_driver_sql("RELEASE SAVEPOINT annexa_batch")

    def settle(self) -> None:
        """Wait for every statement sent and leave pipeline mode, the connection as it was. A
        failure is raised here unless a lookup has raised it already; its batch is rolled
        back, and the batches before it stay committed."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        raw = self.conn.connection.driver_connection
        try:
            pipeline.__exit__(None, None, None)
        finally:
            if raw.pgconn.transaction_status != _IDLE:
                raw.rollback()
            raw.autocommit = False

    def select_in(self, sql: str, fixed: tuple, values: list[str],
                  index: str = "") -> list[tuple]:
        """`sql` with {p} for each fixed parameter, {keys} for `values`, and {index} after the
        table name for SQLite's index hint."""
        if not values:
            return []
        cursor = self.cursor()
        if self.pg:
            query = sql.replace("{p}", "%s").replace(" IN ({keys})", " = ANY(%s::text[])")
            cursor.execute(query.replace("{index}", ""), (*fixed, _pg_text_array(values)))
            return cursor.fetchall()
        # Without statistics SQLite picks the (source, valid_to_run) index for "open rows with
        # these keys", which reads every open row of the source: one batch's lookup would grow
        # with the estate. The index by key is the right one.
        hint = f" INDEXED BY {index}" if index else ""
        rows: list[tuple] = []
        for part in _chunks(values):
            query = sql.replace("{p}", "?").replace("{keys}", ",".join("?" * len(part)))
            rows.extend(cursor.execute(query.replace("{index}", hint), (*fixed, *part)).fetchall())
        return rows

    def table_rows(self, tables: list[str]) -> dict[str, float]:
        """The rows each of `tables` held when last analysed, as its statistics say (0 when it
        never was)."""
        cursor = self.cursor()
        cursor.execute("SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s::text[]) "
                       "AND relkind = 'r'", (_pg_text_array(tables),))
        known = dict(cursor.fetchall())
        return {t: max(known.get(t, 0), 0) for t in tables}

    def analyze(self, tables: list[str]) -> None:
        self.cursor().execute(f"ANALYZE {', '.join(tables)}")

    def rows_by_id(self, table: sa.Table, columns: tuple[str, ...],
                   ids: list[int]) -> list[tuple]:
        names = ", ".join(columns)
        cursor = self.cursor()
        if self.pg:
            cursor.execute(f"SELECT {names} FROM {table.name} WHERE id = ANY(%s::bigint[])",
                           (_pg_array(ids),))
            return cursor.fetchall()
        rows: list[tuple] = []
        for part in _chunks(ids):
            rows.extend(cursor.execute(f"SELECT {names} FROM {table.name} WHERE id IN "
                                       f"({','.join('?' * len(part))})", part).fetchall())
        return rows

    def insert_many(self, table: sa.Table, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.pg:
            # COPY cannot be pipelined. An array literal per column is built by string
            # operations over the whole column; binding lists costs a Python call per value.
            self.cursor().execute(
                f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest("
                f"{self._array_types(table, columns)})",
                [_pg_array(c) for c in zip(*rows, strict=True)])
            return
        marks = ", ".join("?" * len(columns))
        self.conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)

    def _array_types(self, table: sa.Table, columns: tuple[str, ...]) -> str:
        """The unnest() arguments of `columns`: a parameter cast to its column's array type
        each."""
        key = (table.name, columns)
        if key not in self._types:
            self._types[key] = ", ".join(
                f"%s::{table.c[c].type.compile(dialect=self.conn.dialect)}[]" for c in columns)
        return self._types[key]

    def close(self, table: sa.Table, ids: list[int], run_id: int) -> None:
        """End the intervals of rows `ids` at `run_id`."""
        if self._pipeline is not None:
            if ids:
                self.cursor().execute(f"UPDATE {table.name} SET valid_to_run = %s "
                                      "WHERE id = ANY(%s::bigint[])", (run_id, _pg_array(ids)))
            return
        for part in _chunks(ids):
            self.conn.execute(table.update().where(table.c.id.in_(part))
                              .values(valid_to_run=run_id))

    def insert_blobs(self, rows: list[tuple[str, int, bytes, int]]) -> None:
        """Insert blob rows (digest, size, body, first_run), skipping digests that another
        writer stored since the caller looked them up."""
        if not rows:
            return
        if self.pg:
            # One statement (COPY can neither skip a conflict nor be pipelined); the bodies
            # are bytes, bound as a binary array, the rest array literals as in insert_many().
            digests, sizes, bodies, runs = zip(*rows, strict=True)
            self.cursor().execute(
                "INSERT INTO blobs (digest, size, body, first_run) SELECT d, s, b, %s "
                "FROM unnest(%s::text[], %s::int4[], %b::bytea[]) AS t(d, s, b) "
                "ON CONFLICT (digest) DO NOTHING",
                (runs[0], _pg_array(digests), _pg_array(sizes), list(bodies)))
            return
        self.conn.exec_driver_sql(
            "INSERT INTO blobs (digest, size, body, first_run) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (digest) DO NOTHING", rows)


def evidence_json(digests: list[str]) -> str:
    """The stored form of a result's evidence, json.dumps() of its sorted hex digests, built
    directly: it is made for every result of every run."""
    return '["' + '", "'.join(digests) + '"]' if digests else "[]"


def parse_evidence(stored: str) -> list[str]:
    """The inverse of evidence_json(); snapshots read it for every failing result."""
    return stored[2:-2].split('", "') if stored != "[]" else []


def compress(body: bytes) -> bytes:
    """A blob body as stored: one Zstandard frame, a third of zlib's time on resource-sized
    bodies. A compressor costs more to make than a body to compress, and threads must not share
    one, so each thread keeps its own."""
    codec = getattr(_codecs, "compressor", None)
    if codec is None:
        codec = _codecs.compressor = zstandard.ZstdCompressor(level=3)
    return codec.compress(body)


def decompress(stored: bytes) -> bytes:
    """The body of a blob: a Zstandard frame, or a zlib stream as stores written before
    Zstandard hold (a zlib header never starts with Zstandard's magic number)."""
    if bytes(stored[:4]) != _ZSTD_MAGIC:
        return zlib.decompress(stored)
    codec = getattr(_codecs, "decompressor", None)
    if codec is None:
        codec = _codecs.decompressor = zstandard.ZstdDecompressor()
    return codec.decompress(stored)


@dataclass(slots=True)
class PendingResource:
    kind: str
    key: str
    scope: str
    region: str
    digest: str
    body: bytes


@dataclass(slots=True)
class PendingResult:
    check_id: str
    subject: str
    kind: str
    region: str
    status: str
    reason: str
    evidence: list[str]  # sorted, without repeats
    per_resource: bool
    digest: str


def pending_result(check_id: str, subject: str, kind: str, region: str, status: str,
                   reason: str, evidence: list[str], per_resource: bool) -> PendingResult:
    """A result in its stored form, digest included. The collecting process makes it: with a
    writer process, hashing there keeps it off the busier side."""
    unique = sorted(set(evidence)) if len(evidence) > 1 else evidence
    return PendingResult(check_id, subject, kind, region, status, reason, unique, per_resource,
                         result_digest(check_id, subject, status, reason, unique))


@dataclass
class WriteStats:
    resources: int = 0
    results: int = 0
    new_blobs: int = 0
    new_blob_bytes: int = 0
    new_versions: int = 0
    new_results: int = 0
    closed_versions: int = 0
    closed_results: int = 0
    failures_kept: int = 0  # earlier failures that this run could not judge again
    by_status: dict[str, int] = field(default_factory=dict)


class RunWriter:
    """Buffers a run's items and writes them in batches on one connection."""

    def __init__(self, conn: Connection, run_id: int, source: str, batch: int = 1000) -> None:
        self.conn = conn
        self.run_id = run_id
        self.source = source
        self.batch = batch
        self.stats = WriteStats()
        self._resources: dict[str, PendingResource] = {}
        self._results: dict[tuple[str, str], PendingResult] = {}
        self._errors: list[CollectionError] = []
        # Results not about one resource (scope checks, collection errors) are few; the set of
        # those produced tells which earlier ones to close.
        self._other_results: set[tuple[str, str]] = set()
        self._sql = _Driver(conn)
        # SQLite: batches not written yet (resources, results), see _flush_batch().
        self._deferred: list[tuple[list[PendingResource], list[PendingResult]]] = []
        # PostgreSQL: rows per table when the run began, and as its statistics now count them.
        self._rows_before: dict[str, float] = {}
        self._analysed: dict[str, float] | None = None
        if not self._sql.pg:
            # Blobs are keyed by digest, so every batch lands on index pages all over the
            # table, and a commit writes each of them to the WAL. Committing every few
            # batches, with a cache that holds their pages, writes each page once for several
            # (1M resources: 103 s to 95 s). The cache is returned at the end.
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_RUN_CACHE_KIB}")
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {SEEN.name}"))
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE {SEEN.name} (id BIGINT PRIMARY KEY)"))
        conn.commit()

    def add_resource(self, item: PendingResource) -> None:
        # A full batch is written when the next resource arrives, so that the results judged
        # from a resource, added right after it, go into the same batch.
        if len(self._resources) >= self.batch:
            self._flush_batch()
        self._resources[item.key] = item
        self.stats.resources += 1

    def end_batch(self) -> None:
        """Write what is buffered as a batch now (a writer process receives whole batches)."""
        if self._resources or self._results:
            self._flush_batch()

    def add_result(self, item: PendingResult) -> None:
        self._results[(item.check_id, item.subject)] = item
        if not item.per_resource:
            self._other_results.add((item.check_id, item.subject))
        self.stats.results += 1
        self.stats.by_status[item.status] = self.stats.by_status.get(item.status, 0) + 1
        if len(self._results) >= self.batch * RESULTS_PER_BATCH:
            self._flush_batch()

    def add_error(self, err: CollectionError) -> None:
        self._errors.append(err)
        self._sql.settle()
        self.conn.execute(ERRORS.insert(), {
            "run_id": self.run_id, "scope": err.scope, "region": err.region,
            "service": err.service, "kinds": json.dumps(sorted(err.kinds)), "message": err.message,
        })
        if not self._sql.pg:
            self.conn.commit()  # not left holding SQLite's write lock until the next batches

    @property
    def errors(self) -> list[CollectionError]:
        return list(self._errors)

    def flush(self) -> None:
        """Write everything pending, and wait until it is committed."""
        self._flush_batch(final=True)
        self._sql.settle()

    def _flush_batch(self, final: bool = False) -> None:
        if not self._sql.pg:
            # SQLite: batches wait here and are written SQLITE_COMMIT_EVERY at a time, in one
            # transaction: its commit writes their index pages to the WAL once, and the
            # database's single write lock is held only while writing, never while the run
            # waits for a slow API (other sources' runs, attestations and the access log
            # write in between).
            if self._resources or self._results:
                self._deferred.append((list(self._resources.values()),
                                       list(self._results.values())))
                self._resources.clear()
                self._results.clear()
            if final or len(self._deferred) >= SQLITE_COMMIT_EVERY:
                self._write_deferred()
            return
        self._sql.queue()
        self._analyze_grown()
        # A lookup is where an earlier batch's failure surfaces: the items leave the buffers
        # only once both are planned, so that salvage() still has them.
        writes = self._plan(list(self._resources.values()), list(self._results.values()))
        self._resources.clear()
        self._results.clear()
        with self._sql.batch():
            for step in writes:
                step()

    def _plan(self, resources: list[PendingResource],
              results: list[PendingResult]) -> list[Callable[[], None]]:
        writes: list[Callable[[], None]] = []
        if resources:
            writes += self._plan_resources(resources)
        if results:
            writes += self._plan_results(results)
        return writes

    def _write_deferred(self) -> None:
        """Write the waiting batches (SQLite) and commit. A batch that fails is undone alone
        and raised; the batches after it wait for salvage()."""
        try:
            while self._deferred:
                resources, results = self._deferred.pop(0)
                writes = self._plan(resources, results)
                with self._sql.batch():
                    for step in writes:
                        step()
        finally:
            self.conn.commit()

    def _analyze_grown(self) -> None:
        """ANALYZE the tables this run has made ANALYZE_FACTOR times larger than their
        statistics say. A fresh table grows faster than autovacuum re-plans it, and without
        statistics PostgreSQL scans whole tables for each batch's lookups. Their sizes are read
        once, at the first batch: reading them later would wait for every write sent."""
        st = self.stats
        added = {"resource_versions": st.new_versions, "check_results": st.new_results,
                 "blobs": st.new_blobs}
        if self._analysed is None:
            self._analysed = self._sql.table_rows(list(added))
            self._rows_before = dict(self._analysed)
        grown = sorted(t for t, n in added.items()
                       if n and n >= ANALYZE_FACTOR * max(self._analysed[t], 1))
        if grown:
            self._sql.analyze(grown)
            for t in grown:
                self._analysed[t] = self._rows_before[t] + added[t]

    def _plan_resources(self, items: list[PendingResource]) -> list[Callable[[], None]]:
        """Compare a batch with the open versions; return the writes it needs, in order."""
        open_rows = {key: (vid, digest) for vid, key, digest in self._sql.select_in(
            "SELECT id, key, digest FROM resource_versions{index} WHERE source = {p} "
            "AND valid_to_run IS NULL AND key IN ({keys})", (self.source,),
            [i.key for i in items], "ix_resource_versions_key")}
        unchanged, closing, changed = [], [], []
        for item in items:
            current = open_rows.get(item.key)
            if current and current[1] == item.digest:
                unchanged.append((current[0],))
                continue
            if current:
                closing.append(current[0])
            changed.append(item)
        inserting = [(self.source, i.kind, i.key, i.scope, i.region, i.digest, self.run_id)
                     for i in changed]
        blobs = self._new_blobs(changed) if changed else []
        self.stats.new_versions += len(inserting)
        self.stats.closed_versions += len(closing)
        return [
            lambda: self._sql.insert_blobs(blobs),
            lambda: self._sql.insert_many(SEEN, ("id",), unchanged),
            lambda: self._sql.close(VERSIONS, closing, self.run_id),
            lambda: self._sql.insert_many(VERSIONS, (
                "source", "kind", "key", "scope", "region", "digest", "valid_from_run"),
                inserting),
        ]

    def _new_blobs(self, items: list[PendingResource]) -> list[tuple]:
        """The blob rows of those bodies not stored yet."""
        wanted = {i.digest: i.body for i in items}
        known = {d for (d,) in self._sql.select_in(
            "SELECT digest FROM blobs WHERE digest IN ({keys})", (), list(wanted))}
        fresh = {d: b for d, b in wanted.items() if d not in known}
        self.stats.new_blobs += len(fresh)
        self.stats.new_blob_bytes += sum(len(b) for b in fresh.values())
        return [(d, len(b), compress(b), self.run_id) for d, b in fresh.items()]

    def _plan_results(self, items: list[PendingResult]) -> list[Callable[[], None]]:
        open_rows = {(c, s): (rid, d, st) for rid, c, s, d, st in self._sql.select_in(
            "SELECT id, check_id, subject, result_digest, status FROM check_results{index} "
            "WHERE source = {p} AND valid_to_run IS NULL AND subject IN ({keys})",
            (self.source,), list({i.subject for i in items}), "ix_check_results_open")}
        closing, inserting = [], []
        carried: list[tuple[PendingResult, int, str]] = []
        for item in items:
            current = open_rows.get((item.check_id, item.subject))
            if current:
                if current[1] == item.digest:
                    continue
                if item.status == "error" and current[2] == "fail":
                    carried.append((item, current[0], current[1]))
                    continue
                closing.append(current[0])
            inserting.append((self.source, item.check_id, item.subject, item.kind, item.region,
                              item.status, item.reason, evidence_json(item.evidence),
                              item.digest, self.run_id))
        if carried:
            self._carry(carried, closing, inserting)
        self.stats.new_results += len(inserting)
        self.stats.closed_results += len(closing)
        return [
            lambda: self._sql.close(RESULTS, closing, self.run_id),
            lambda: self._sql.insert_many(RESULTS, (
                "source", "check_id", "subject", "kind", "region", "status", "reason",
                "evidence", "result_digest", "valid_from_run"), inserting),
        ]

    def _carry(self, carried: list[tuple[PendingResult, int, str]], closing: list[int],
               inserting: list[tuple]) -> None:
        """Results that could not be judged this time, of checks that failed before: the
        failure stays, on the evidence it rested on, its reason saying why it was not judged
        again, until the data can be read and judged. (A rare path: its one lookup is
        separate from the batch's.)"""
        earlier = {rid: (reason, stored) for rid, reason, stored in self._sql.rows_by_id(
            RESULTS, ("id", "reason", "evidence"), [rid for _, rid, _ in carried])}
        for item, rid, digest in carried:
            reason, stored = earlier[rid]
            reason = f"{reason.split(CARRIED)[0]}{CARRIED}{item.reason})"
            evidence = parse_evidence(stored)
            new_digest = result_digest(item.check_id, item.subject, "fail", reason, evidence)
            self.stats.failures_kept += 1
            if new_digest == digest:
                continue
            closing.append(rid)
            inserting.append((self.source, item.check_id, item.subject, item.kind, item.region,
                              "fail", reason, stored, new_digest, self.run_id))

    def finish(self, registered_checks: set[str] | None) -> WriteStats:
        """End the run's writing. With the registered checks, close what the run did not see;
        without them (a run cut short), only store what is pending."""
        try:
            if registered_checks is None:
                self.flush()
            else:
                self.close_unseen(registered_checks)
        except BaseException:
            self._release(failing=True)
            raise
        self._release()
        return self.stats

    def salvage(self) -> None:
        """After the run failed: keep what the batches before a failed one wrote, and store
        what is pending. A failed batch has been undone on its own."""
        try:
            self._sql.settle()
        except Exception:
            log.exception("could not store a batch of %s", self.source)
        try:
            self.conn.commit()
            self.flush()
        except Exception:
            self.conn.rollback()
            log.exception("could not store the last batch of %s", self.source)
        finally:
            self._release()

    def _release(self, failing: bool = False) -> None:
        """Give back what the run held: its cache on SQLite, pipeline mode on PostgreSQL.
        While a failure propagates, leaving pipeline mode only answers that the statements
        after it were aborted: that must not replace the database's own words."""
        try:
            if self._sql.pg:
                self._sql.settle()
            else:
                self.conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default
        except Exception:
            # SQLite refuses every statement of a transaction that failed (a full disk) until
            # it is rolled back, which salvage() does next.
            if not failing:
                raise
            log.debug("after a failed write of %s", self.source, exc_info=True)

    def close_unseen(self, registered_checks: set[str]) -> None:
        """Close what this run did not see: resources gone, and results no longer produced.

        What sits under a kind and region that could not be read is kept open: absence of
        evidence there is not evidence of absence."""
        self.flush()
        gone = self.conn.execute(VERSIONS.update().where(
            VERSIONS.c.source == self.source, VERSIONS.c.valid_to_run.is_(None),
            VERSIONS.c.valid_from_run < self.run_id, VERSIONS.c.id.not_in(sa.select(SEEN.c.id)),
            *self._kept(VERSIONS)).values(valid_to_run=self.run_id))
        self.stats.closed_versions += gone.rowcount
        # An open result whose subject has no open version is about a resource that is gone,
        # or is a scope or error result: keep only those produced by this run.
        has_version = sa.exists().where(VERSIONS.c.source == self.source,
                                        VERSIONS.c.valid_to_run.is_(None),
                                        VERSIONS.c.key == RESULTS.c.subject)
        orphans = self.conn.execute(sa.select(RESULTS.c.id, RESULTS.c.check_id,
                                              RESULTS.c.subject).where(
            RESULTS.c.source == self.source, RESULTS.c.valid_to_run.is_(None),
            RESULTS.c.valid_from_run < self.run_id, ~has_version))
        stale = [rid for rid, check_id, subject in orphans
                 if (check_id, subject) not in self._other_results]
        retired = self.conn.scalars(sa.select(RESULTS.c.id).where(
            RESULTS.c.source == self.source, RESULTS.c.valid_to_run.is_(None),
            RESULTS.c.check_id.not_in(registered_checks)))
        stale.extend(retired)
        self._sql.close(RESULTS, stale, self.run_id)
        self.stats.closed_results += len(stale)
        self.conn.commit()

    def _kept(self, table: sa.Table) -> Iterable[sa.ColumnElement[bool]]:
        # An error is about its own scope: one subscription or project that could not be read
        # keeps its resources, not those of the others beside it in the same source.
        for err in self._errors:
            if err.key is not None:
                yield table.c.key != err.key
                continue
            in_kinds = sa.and_(table.c.scope == err.scope, table.c.kind.in_(err.kinds))
            if err.region == ALL_REGIONS:
                yield sa.not_(in_kinds)
            else:
                yield sa.not_(sa.and_(in_kinds, table.c.region == err.region))


def _pg_text_array(values: Sequence[str]) -> str:
    """A text[] literal. psycopg adapts a list element by element in Python, 5 ms for a batch's
    1,000 keys; the literal is built by a few string operations over the whole column. NUL
    joins the values because PostgreSQL's text cannot hold it."""
    if not values:
        return "{}"
    joined = "\x00".join(values)
    if joined.count("\x00") != len(values) - 1:
        raise ValueError("a text value holds a NUL character, which PostgreSQL cannot store")
    if "\\" in joined or '"' in joined:
        joined = joined.replace("\\", "\\\\").replace('"', '\\"')
    return '{"' + joined.replace("\x00", '","') + '"}'


def _pg_array(values: Sequence[Any]) -> str:
    """An array literal of text or integer values."""
    if isinstance(values[0], str):
        return _pg_text_array(values)
    return "{" + ",".join(map(str, values)) + "}"


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]
