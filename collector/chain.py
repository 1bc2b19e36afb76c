"""Sealing runs into the chain, and verifying the whole ledger from the database."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from types import SimpleNamespace

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine

from collector import ledger
from collector.canonical import sha256_hex
from collector.ledger import GENESIS, LeafSet, Signer
from collector.locks import chain_lock
from collector.schema import ApiAccess, Run, SigningKey, now
from collector.store import BLOBS, ERRORS, RESULTS, VERSIONS, decompress

RUNS = Run.__table__
log = logging.getLogger("annexa.chain")
KEYS = SigningKey.__table__
ACCESS = ApiAccess.__table__
_seal_lock = threading.Lock()
_STATE_CHUNK = 5000  # rows of a source's state read at a time


@dataclass
class RunState:
    """The state of a source as of one run: the leaves of every resource version and check
    result valid at it, and those results counted per check and status."""

    leaves: LeafSet
    result_counts: dict[str, dict[str, int]]

    def counts_json(self) -> str:
        return json.dumps(self.result_counts, sort_keys=True)


def run_state(conn: Connection, source: str, run_id: int) -> RunState:
    leaves = LeafSet()
    resource_leaf, result_leaf = ledger.resource_leaf, ledger.result_leaf
    for rows in _valid_rows(conn, "key, digest", "resource_versions", source, run_id):
        leaves.extend([resource_leaf(key, digest) for key, digest in rows])
    tally: Counter[tuple[str, str]] = Counter()
    for rows in _valid_rows(conn, "check_id, subject, result_digest, status", "check_results",
                            source, run_id):
        leaves.extend([result_leaf(check_id, subject, digest)
                       for check_id, subject, digest, _ in rows])
        tally.update(map(itemgetter(0, 3), rows))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for (check_id, status), n in tally.items():
        counts[check_id][status] = n
    return RunState(leaves, dict(counts))


def _valid_rows(conn: Connection, columns: str, table: str, source: str,
                run_id: int) -> Iterator[list[tuple]]:
    """Rows valid at `run_id`, in batches, read through the driver's own cursor: a seal reads
    every row of its source's state, and SQLAlchemy's per-row objects would cost more than the
    reading. PostgreSQL streams them in chunks: the state is never held whole, and the server
    sends the next chunk while this process hashes the last (a named cursor's FETCH waited for
    each: 37,500 results took 76 ms to read and hash, now 52)."""
    raw = conn.connection.driver_connection
    pg = conn.dialect.name == "postgresql"
    mark = "%s" if pg else "?"
    query = (f"SELECT {columns} FROM {table} WHERE source = {mark} "
             f"AND valid_from_run <= {mark} AND (valid_to_run IS NULL OR valid_to_run > {mark})")
    cursor = raw.cursor()
    try:
        if pg:
            rows = cursor.stream(query, (source, run_id, run_id), size=_STATE_CHUNK)
            while chunk := list(islice(rows, _STATE_CHUNK)):
                yield chunk
            return
        cursor.execute(query, (source, run_id, run_id))
        while chunk := cursor.fetchmany(_STATE_CHUNK):
            yield chunk
    finally:
        cursor.close()


def run_errors(conn: Connection, run_id: int) -> list[dict[str, str]]:
    rows = conn.execute(sa.select(ERRORS.c.scope, ERRORS.c.region, ERRORS.c.service,
                                  ERRORS.c.kinds, ERRORS.c.message)
                        .where(ERRORS.c.run_id == run_id))
    return [{"scope": s, "region": r, "service": v, "kinds": k, "message": m}
            for s, r, v, k, m in rows]


def register_key(conn: Connection, signer: Signer) -> None:
    exists = conn.scalar(sa.select(KEYS.c.key_id).where(KEYS.c.key_id == signer.key_id))
    if not exists:
        conn.execute(KEYS.insert(), {"key_id": signer.key_id, "public_key": signer.public_hex,
                                     "created_at": now()})


def seal(engine: Engine, run_id: int, signer: Signer) -> SimpleNamespace:
    """Give the run its Merkle root, its place in the chain and its signature.

    The run's state is hashed first, outside any lock: once a run stops writing, the rows
    valid at it never change (later runs of its source only close intervals after it, and its
    source's lock keeps every other writer out). Only the link to the newest run is made under
    the chain lock, so concurrent seals wait for each other's link, not each other's hashing."""
    with engine.connect() as conn:
        run = _load_run(conn, run_id)
        if run.seq is not None:
            return run
        state = run_state(conn, run.source, run.id)
        errors = run_errors(conn, run.id)
    signer = signer.fresh()  # `annexa key rotate` may have replaced the key meanwhile
    asked = time.monotonic()
    with _seal_lock, chain_lock(engine) as conn:
        waited = time.monotonic() - asked
        register_key(conn, signer)
        current = _load_run(conn, run_id)
        if current.seq is not None:
            return current
        run.merkle_root = state.leaves.root()
        run.result_counts = state.counts_json()
        run.finished_at = current.finished_at or now()
        last = conn.execute(sa.select(RUNS.c.seq, RUNS.c.chain_hash, RUNS.c.key_id)
                            .where(RUNS.c.seq.is_not(None)).order_by(RUNS.c.seq.desc())
                            .limit(1)).first()
        run.seq = (last.seq + 1) if last else 1
        run.prev_hash = last.chain_hash if last else GENESIS
        handing_over = last is not None and last.key_id not in (None, signer.key_id) \
            and last.key_id in signer.retired
        if last is not None and last.key_id not in (None, signer.key_id) and not handing_over:
            log.warning("sealing with key %s after runs signed by %s, without its retired key "
                        "to hand over: verify will report the change (rotate keys with "
                        "`annexa key rotate`)", signer.key_id, last.key_id)
        run.key_change = json.dumps({
            "key_id": signer.key_id, "public_key": signer.public_hex,
            "previous_key_id": last.key_id}, sort_keys=True) if handing_over else None
        run.chain_hash = ledger.chain_hash(ledger.run_header(run, errors))
        run.signature = signer.sign(run.chain_hash)
        run.handover_signature = signer.handover(last.key_id, run.chain_hash) \
            if handing_over else None
        run.key_id = signer.key_id
        conn.execute(RUNS.update().where(RUNS.c.id == run.id, RUNS.c.seq.is_(None)).values(
            seq=run.seq, merkle_root=run.merkle_root, prev_hash=run.prev_hash,
            chain_hash=run.chain_hash, signature=run.signature, key_id=run.key_id,
            finished_at=run.finished_at, result_counts=run.result_counts,
            key_change=run.key_change, handover_signature=run.handover_signature))
    # The wait is how much seals serialise (bench/org_scale.py reads it from workers' logs).
    log.info("sealed run %s of %s as #%s, chain hash %s (chain lock waited %.1f ms)", run.id,
             run.source, run.seq, run.chain_hash, waited * 1000)
    return run


def chain_head(conn: Connection) -> tuple[int, str] | None:
    """(seq, chain hash) of the newest sealed run, or None before the first seal."""
    row = conn.execute(sa.select(RUNS.c.seq, RUNS.c.chain_hash).where(RUNS.c.seq.is_not(None))
                       .order_by(RUNS.c.seq.desc()).limit(1)).first()
    return (row.seq, row.chain_hash) if row else None


# Hex digits of a chain hash that a metric can carry exactly (a float64 holds 53 bits).
HEAD_PREFIX_DIGITS = 13


def hash_prefix(chain_hash: str) -> int:
    return int(chain_hash[:HEAD_PREFIX_DIGITS], 16)


def _load_run(conn: Connection, run_id: int) -> SimpleNamespace:
    """The run's record, which its seal completes. A plain record: the first ORM instance in a
    process configures every mapper, 30 ms of a one-shot `annexa collect`."""
    row = conn.execute(sa.select(RUNS).where(RUNS.c.id == run_id)).one()
    return SimpleNamespace(**row._asdict())


@dataclass
class VerifyReport:
    runs: int = 0
    blobs: int = 0
    results: int = 0
    access_entries: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(engine: Engine, public: Ed25519PublicKey,
           expect_head: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute every digest, Merkle root, chain link and signature from the database, and
    check the API access log against its sealed copies. With `expect_head` (a sequence number
    and its chain hash, or a prefix of it, as a witness outside the database saw them), check
    that the chain still holds that run: the newest runs cannot be removed unnoticed then."""
    report = VerifyReport()
    expected_key = ledger.key_id(public)
    with engine.connect() as conn:
        for check in (_verify_blobs(conn, report), _verify_results(conn, report),
                      _verify_chain(conn, public, expected_key, report),
                      _verify_access_log(conn, report),
                      _verify_head(conn, expect_head) if expect_head else iter(())):
            for problem in check:
                report.problems.append(problem)
                break
        unsealed = conn.scalar(sa.select(sa.func.count()).select_from(RUNS)
                               .where(RUNS.c.seq.is_(None)))
        if unsealed:
            report.warnings.append(f"{unsealed} run(s) are not sealed yet (running or abandoned)")
        pending = conn.scalar(sa.select(sa.func.count()).select_from(ACCESS)
                              .where(ACCESS.c.sealed_run.is_(None)))
        if pending:
            report.warnings.append(f"{pending} API access log entr(y/ies) are not sealed yet: "
                                   "they cannot be verified before their seal")
    return report


def _verify_head(conn: Connection, expect: tuple[int, str]) -> Iterator[str]:
    seq, expected = expect
    row = conn.execute(sa.select(RUNS.c.id, RUNS.c.chain_hash).where(RUNS.c.seq == seq)).first()
    if row is None:
        newest = chain_head(conn)
        yield (f"the chain ends at seq {newest[0] if newest else 0}, but seq {seq} was "
               "witnessed: the newest runs were removed")
    elif not (row.chain_hash or "").startswith(expected.lower()):
        yield (f"run {row.id} (seq {seq}): chain hash {row.chain_hash} is not the witnessed "
               f"{expected}: the chain was rewritten from there")


def _verify_access_log(conn: Connection, report: VerifyReport) -> Iterator[str]:
    """Each sealed entry of the API access log equals its sealed copy (the version its sealing
    run stored), and no sealed copy has lost its entry."""
    from collector import access_log

    copy_key = sa.literal(access_log.KEY_PREFIX) + sa.cast(ACCESS.c.id, sa.String)
    copies = sa.outerjoin(ACCESS, VERSIONS, sa.and_(
        VERSIONS.c.source == access_log.SOURCE, VERSIONS.c.key == copy_key,
        VERSIONS.c.valid_from_run == ACCESS.c.sealed_run))
    rows = conn.execute(sa.select(ACCESS, VERSIONS.c.digest.label("sealed_digest"))
                        .select_from(copies).where(ACCESS.c.sealed_run.is_not(None))
                        .order_by(ACCESS.c.id).execution_options(yield_per=5000))
    for row in rows:
        report.access_entries += 1
        if row.sealed_digest is None:
            yield (f"API access log entry {row.id}: its sealed copy in run {row.sealed_run} is "
                   "missing (the entry was moved or the run altered)")
        elif sha256_hex(access_log.entry_body(row)) != row.sealed_digest:
            yield (f"API access log entry {row.id}: differs from its sealed copy in run "
                   f"{row.sealed_run} (the entry was altered)")
    lost = conn.execute(sa.select(VERSIONS.c.key, VERSIONS.c.valid_from_run).where(
        VERSIONS.c.source == access_log.SOURCE, VERSIONS.c.kind == access_log.KIND,
        ~sa.exists().where(copy_key == VERSIONS.c.key)).limit(1)).first()
    if lost:
        yield (f"API access log entry {lost.key.removeprefix(access_log.KEY_PREFIX)} was "
               f"deleted: its sealed copy in run {lost.valid_from_run} remains")


def _verify_blobs(conn: Connection, report: VerifyReport) -> Iterator[str]:
    rows = conn.execute(
        sa.select(BLOBS.c.digest, BLOBS.c.size, BLOBS.c.body).order_by(BLOBS.c.digest)
        .execution_options(yield_per=2000))
    pruned: set[str] | None = None
    for digest, size, body in rows:
        report.blobs += 1
        if body is None:
            # Pruned by retention, the digest alone still anchoring the chain, if a sealed
            # prune record says so; a body that vanished otherwise was deleted.
            if pruned is None:
                # Imported here: collector.retention seals through the pipeline, which
                # imports this module.
                from collector.retention import sealed_prunes

                pruned = sealed_prunes(conn)
            if digest not in pruned:
                yield (f"blob {digest}: its body is missing and no sealed prune run lists it "
                       "(evidence was deleted)")
            continue
        try:
            data = decompress(body)
        except Exception:
            yield f"blob {digest}: body is not readable (corrupted)"
            continue
        if sha256_hex(data) != digest or len(data) != size:
            yield f"blob {digest}: content does not match its digest (evidence was altered)"
    orphan = conn.execute(
        sa.select(VERSIONS.c.id, VERSIONS.c.key, VERSIONS.c.digest)
        .where(VERSIONS.c.digest.not_in(sa.select(BLOBS.c.digest))).limit(1)).first()
    if orphan:
        yield (f"resource version {orphan.id} ({orphan.key}): its blob {orphan.digest} is "
               "missing")


def _verify_results(conn: Connection, report: VerifyReport) -> Iterator[str]:
    rows = conn.execute(
        sa.select(RESULTS.c.id, RESULTS.c.check_id, RESULTS.c.subject, RESULTS.c.status,
                  RESULTS.c.reason, RESULTS.c.evidence, RESULTS.c.result_digest)
        .order_by(RESULTS.c.id).execution_options(yield_per=5000))
    for rid, check_id, subject, status, reason, evidence, digest in rows:
        report.results += 1
        if ledger.result_digest(check_id, subject, status, reason, json.loads(evidence)) != digest:
            yield (f"check result {rid} ({check_id} on {subject}): content does not match its "
                   "digest (result was altered)")


def _verify_chain(conn: Connection, public: Ed25519PublicKey, expected_key: str,
                  report: VerifyReport) -> Iterator[str]:
    runs = conn.execute(sa.select(RUNS).where(RUNS.c.seq.is_not(None)).order_by(RUNS.c.seq))
    prev = GENESIS
    registered = dict(conn.execute(sa.select(KEYS.c.key_id, KEYS.c.public_key)).all())

    def lookup(key: str) -> Ed25519PublicKey | None:
        if key == expected_key:
            return public
        try:
            return Ed25519PublicKey.from_public_bytes(bytes.fromhex(registered[key]))
        except (KeyError, ValueError):
            return None

    keys = ledger.KeyHistory(lookup)
    for expected_seq, run in enumerate(runs, start=1):
        report.runs += 1
        label = f"run {run.id} (seq {run.seq}, source {run.source})"
        if run.seq != expected_seq:
            yield f"{label}: expected seq {expected_seq}: a run is missing from the chain"
            return
        if run.prev_hash != prev:
            yield f"{label}: its link to the previous run is broken (runs deleted or reordered)"
            return
        header = ledger.run_header(run, run_errors(conn, run.id))
        if ledger.chain_hash(header) != run.chain_hash:
            yield f"{label}: its header does not match its chain hash (run record altered)"
            return
        problem = keys.step(run.seq, run.key_id, run.chain_hash or "", run.signature or "",
                            json.loads(run.key_change) if run.key_change else None,
                            run.handover_signature)
        if problem:
            yield f"{label}: {problem}"
            return
        state = run_state(conn, run.source, run.id)
        if state.leaves.root() != run.merkle_root:
            yield (f"{label}: Merkle root does not match the evidence valid at that run "
                   "(resource versions or results added, removed or altered)")
            return
        if run.result_counts is not None and run.result_counts != state.counts_json():
            yield (f"{label}: its result counts do not match the evidence valid at that run "
                   "(run summary altered)")
            return
        prev = run.chain_hash or ""
    if report.runs and expected_key not in keys.keys:
        yield (f"the chain is signed by key(s) {', '.join(keys.keys)}, not by the expected key "
               f"{expected_key}")

