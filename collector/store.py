"""Writes one run's evidence: blobs once per digest, resource versions and check results as
validity intervals. The only update anywhere is closing an interval (setting valid_to_run)."""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
SQLITE_RUN_CACHE_KIB = 65_536
_SEEN = "annexa_seen_versions"  # per-connection temporary table of unchanged open versions


class _Driver:
    """The writer's hot statements at the DBAPI level: SQLAlchemy's per-row parameter handling
    costs more than the database does here. PostgreSQL gets COPY and = ANY(array)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"

    def select_in(self, sql: str, fixed: tuple, values: list[str],
                  index: str = "") -> list[tuple]:
        """`sql` with {p} for each fixed parameter, {keys} for `values`, and {index} after the
        table name for SQLite's index hint."""
        if not values:
            return []
        cursor = self.conn.connection.driver_connection.cursor()
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

    def analyze_grown(self, tables: dict[str, int], factor: int) -> None:
        """ANALYZE those of `tables` (name: rows this run inserted) that this run has made
        `factor` times larger than their statistics say."""
        known = dict(self.conn.exec_driver_sql(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%(t)s) "
            "AND relkind = 'r'", {"t": list(tables)}).all())
        grown = sorted(t for t, n in tables.items() if n and n >= factor * max(known.get(t, 0), 1))
        if grown:
            self.conn.exec_driver_sql(f"ANALYZE {', '.join(grown)}")

    def insert_many(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if self.pg:
            _copy(self.conn.connection.driver_connection.cursor(), table, names, rows)
            return
        marks = ", ".join("?" * len(columns))
        self.conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)

    def insert_blobs(self, rows: list[tuple[str, int, bytes, int]]) -> None:
        """Insert blob rows (digest, size, body, first_run), skipping digests that another
        writer stored since the caller looked them up."""
        if not rows:
            return
        if self.pg:
            # One statement, its arrays bound in binary: COPY cannot skip a conflict, and
            # wrapping it in a savepoint cost four round trips a batch, each of which could
            # wait out the interpreter's switch interval behind the collecting thread.
            digests, sizes, bodies, runs = zip(*rows, strict=True)
            self.conn.connection.driver_connection.cursor().execute(
                "INSERT INTO blobs (digest, size, body, first_run) SELECT d, s, b, %b "
                "FROM unnest(%b::text[], %b::int4[], %b::bytea[]) AS t(d, s, b) "
                "ON CONFLICT (digest) DO NOTHING",
                (runs[0], list(digests), list(sizes), list(bodies)))
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
        self._flushes = 0
        # On PostgreSQL a batch's writes and commit run on a thread of their own, so the server
        # works on them while this thread takes in the next batch (the wait on the server
        # releases the interpreter). Anything else on the connection first waits for them.
        self._io = ThreadPoolExecutor(1, "annexa-store") if self._sql.pg else None
        self._writing: Future[None] | None = None
        if not self._sql.pg:
            # Blobs are keyed by digest, so every batch lands on index pages all over the
            # table, and a commit writes each of them to the WAL. Committing every few
            # batches, with a cache that holds their pages, writes each page once for several
            # (1M resources: 103 s to 95 s). The cache is returned at the end.
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_RUN_CACHE_KIB}")
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {_SEEN}"))
        conn.execute(sa.text(f"CREATE TEMPORARY TABLE {_SEEN} (id BIGINT PRIMARY KEY)"))
        conn.commit()

    def add_resource(self, item: PendingResource) -> None:
        self._resources[item.key] = item
        self.stats.resources += 1
        if len(self._resources) >= self.batch:
            self._flush_batch()

    def add_result(self, item: PendingResult) -> None:
        self._results[(item.check_id, item.subject)] = item
        if not item.per_resource:
            self._other_results.add((item.check_id, item.subject))
        self.stats.results += 1
        self.stats.by_status[item.status] = self.stats.by_status.get(item.status, 0) + 1
        if len(self._results) >= self.batch * 4:
            self._flush_batch()

    def add_error(self, err: CollectionError) -> None:
        self._errors.append(err)
        self._settle()
        self.conn.execute(ERRORS.insert(), {
            "run_id": self.run_id, "scope": err.scope, "region": err.region,
            "service": err.service, "kinds": json.dumps(sorted(err.kinds)), "message": err.message,
        })

    @property
    def errors(self) -> list[CollectionError]:
        return list(self._errors)

    def flush(self) -> None:
        """Write everything pending, and wait until it is committed."""
        self._flush_batch(final=True)
        self._settle()

    def _flush_batch(self, final: bool = False) -> None:
        self._settle()
        self._flushes += 1
        if self._sql.pg and self._flushes & (self._flushes - 1) == 0:
            # A fresh table grows faster than autovacuum re-plans it: without statistics
            # PostgreSQL scans whole tables for each batch's lookups.
            st = self.stats
            self._sql.analyze_grown({"resource_versions": st.new_versions,
                                     "check_results": st.new_results, "blobs": st.new_blobs},
                                    ANALYZE_FACTOR)
        writes: list[Callable[[], None]] = []
        if self._resources:
            writes += self._plan_resources(list(self._resources.values()))
            self._resources.clear()
        if self._results:
            writes += self._plan_results(list(self._results.values()))
            self._results.clear()

        commit = final or self._sql.pg or self._flushes % SQLITE_COMMIT_EVERY == 0

        def write() -> None:
            for step in writes:
                step()
            if commit:
                self.conn.commit()

        if self._io is None:
            write()
        else:
            self._writing = self._io.submit(write)

    def _settle(self) -> None:
        """Wait for the last batch's writes; their failure is raised here."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

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
            lambda: self._sql.insert_many(_SEEN, ("id",), unchanged),
            lambda: self._close(VERSIONS, closing),
            lambda: self._sql.insert_many("resource_versions", (
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
        open_rows = {(c, s): (rid, d) for rid, c, s, d in self._sql.select_in(
            "SELECT id, check_id, subject, result_digest FROM check_results{index} "
            "WHERE source = {p} AND valid_to_run IS NULL AND subject IN ({keys})",
            (self.source,), list({i.subject for i in items}), "ix_check_results_open")}
        closing, inserting = [], []
        for item in items:
            current = open_rows.get((item.check_id, item.subject))
            if current:
                if current[1] == item.digest:
                    continue
                closing.append(current[0])
            inserting.append((self.source, item.check_id, item.subject, item.kind, item.region,
                              item.status, item.reason, evidence_json(item.evidence),
                              item.digest, self.run_id))
        self.stats.new_results += len(inserting)
        self.stats.closed_results += len(closing)
        return [
            lambda: self._close(RESULTS, closing),
            lambda: self._sql.insert_many("check_results", (
                "source", "check_id", "subject", "kind", "region", "status", "reason",
                "evidence", "result_digest", "valid_from_run"), inserting),
        ]

    def _close(self, table: sa.Table, ids: list[int]) -> None:
        for part in _chunks(ids):
            self.conn.execute(table.update().where(table.c.id.in_(part))
                              .values(valid_to_run=self.run_id))

    def finish(self, registered_checks: set[str] | None) -> WriteStats:
        """End the run's writing. With the registered checks, close what the run did not see;
        without them (a run cut short), only store what is pending."""
        try:
            if registered_checks is None:
                self.flush()
            else:
                self.close_unseen(registered_checks)
        finally:
            self._release()
        return self.stats

    def salvage(self) -> None:
        """After the run failed: drop the failed statement's transaction, store what is
        pending."""
        try:
            self._settle()
        except Exception:
            log.exception("could not store a batch of %s", self.source)
        self.conn.rollback()
        try:
            self.flush()
        except Exception:
            self.conn.rollback()
            log.exception("could not store the last batch of %s", self.source)
        finally:
            self._release()

    def _release(self) -> None:
        """Give back what the run held: its cache on SQLite, its thread on PostgreSQL."""
        if not self._sql.pg:
            self.conn.exec_driver_sql("PRAGMA cache_size=-2000")  # SQLite's default
        if self._io is not None:
            self._io.shutdown()
            self._io = None  # whatever comes later is written in this thread

    def close_unseen(self, registered_checks: set[str]) -> None:
        """Close what this run did not see: resources gone, and results no longer produced.

        What sits under a kind and region that could not be read is kept open: absence of
        evidence there is not evidence of absence."""
        self.flush()
        seen = sa.table(_SEEN, sa.column("id"))
        gone = self.conn.execute(VERSIONS.update().where(
            VERSIONS.c.source == self.source, VERSIONS.c.valid_to_run.is_(None),
            VERSIONS.c.valid_from_run < self.run_id, VERSIONS.c.id.not_in(sa.select(seen.c.id)),
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
        self._close(RESULTS, stale)
        self.stats.closed_results += len(stale)
        self.conn.commit()

    def _kept(self, table: sa.Table) -> Iterable[sa.ColumnElement[bool]]:
        for err in self._errors:
            in_kinds = table.c.kind.in_(err.kinds)
            if err.region == ALL_REGIONS:
                yield sa.not_(in_kinds)
            else:
                yield sa.not_(sa.and_(in_kinds, table.c.region == err.region))


def _copy(cursor: Any, table: str, names: str, rows: list[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _pg_text_array(values: list[str]) -> str:
    """A text[] literal. psycopg adapts a list element by element in Python, 5 ms for a batch's
    1,000 keys; the literal is built in C string operations."""
    return "{" + ",".join(
        '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def _chunks(values: list, size: int = _CHUNK) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]
