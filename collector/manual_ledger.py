"""Runs of Annexa's reserved sources for manual controls (`annexa-soa`, `annexa-attestations`).

They go through the same machinery as a collection: the pipeline's RunWriter stores each item as
a content-addressed blob and a resource version, and `chain.seal` gives the run its Merkle root,
chain link and signature, so `annexa verify` covers them with no second chain. Reading "as of"
an instant takes the versions valid at the source's last sealed run that had finished by then,
exactly as `posture.latest_runs` does for collections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from collector.canonical import sha256_hex
from collector.chain import RUNS, seal
from collector.ledger import Signer
from collector.locks import source_lock
from collector.pipeline import recover_abandoned
from collector.schema import now
from collector.store import BLOBS, VERSIONS, PendingResource, RunWriter, decompress

SCOPE, REGION = "annexa", "global"
_lock = threading.Lock()
_WAIT = 120.0  # seconds


@dataclass(frozen=True)
class Item:
    kind: str
    key: str
    body: bytes  # canonical JSON, or a document's bytes as uploaded; its SHA-256 is the digest


@dataclass(frozen=True)
class RunRef:
    """A sealed run of a reserved source: the version of the SoA or attestations in force."""

    run_id: int
    seq: int
    finished_at: datetime
    chain_hash: str

    def as_dict(self) -> dict[str, object]:
        return {"run": self.run_id, "seq": self.seq, "finished_at": self.finished_at.isoformat(),
                "chain_hash": self.chain_hash}


@dataclass(frozen=True)
class Written:
    run: RunRef
    new_versions: int
    closed_versions: int


def write_run(engine: Engine, signer: Signer, source: str, items: Iterable[Item], *,
              replace: bool) -> Written:
    """Store `items` as one sealed run of `source`. With `replace`, the items are the source's
    whole state and versions not among them are closed; otherwise the run only adds."""
    # Attesting from the API and the CLI at once: the second waits for the first.
    with _lock, source_lock(engine, source, wait=_WAIT):
        recover_abandoned(engine, source, signer)
        with engine.begin() as conn:
            run_id = conn.execute(RUNS.insert().values(
                source=source, kind="annexa", started_at=now(), status="running", resources=0,
                results=0, errors=0)).inserted_primary_key[0]
        with engine.connect() as conn:
            writer = RunWriter(conn, run_id, source)
            for item in items:
                writer.add_resource(PendingResource(item.kind, item.key, SCOPE, REGION,
                                                    sha256_hex(item.body), item.body))
            # A reserved source has no check results to keep.
            writer.finish(set() if replace else None)
            conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(
                status="complete", finished_at=now(), resources=writer.stats.resources))
            conn.commit()
        sealed = seal(engine, run_id, signer)
    assert sealed.seq is not None and sealed.finished_at and sealed.chain_hash
    return Written(RunRef(sealed.id, sealed.seq, sealed.finished_at, sealed.chain_hash),
                   writer.stats.new_versions, writer.stats.closed_versions)


def open_digests(conn: Connection, source: str, kind: str) -> dict[str, str]:
    """Key -> digest of the versions of `kind` that are open now."""
    rows = conn.execute(sa.select(VERSIONS.c.key, VERSIONS.c.digest).where(
        VERSIONS.c.source == source, VERSIONS.c.kind == kind, VERSIONS.c.valid_to_run.is_(None)))
    return {key: digest for key, digest in rows}


def last_run(conn: Connection, source: str, at: datetime) -> RunRef | None:
    row = conn.execute(
        sa.select(RUNS.c.id, RUNS.c.seq, RUNS.c.finished_at, RUNS.c.chain_hash)
        .where(RUNS.c.source == source, RUNS.c.seq.is_not(None), RUNS.c.finished_at <= at)
        .order_by(RUNS.c.id.desc()).limit(1)).first()
    return RunRef(row.id, row.seq, row.finished_at, row.chain_hash) if row else None


def bodies_at(conn: Connection, source: str, kind: str, run: RunRef,
              ) -> Iterator[tuple[str, int, bytes]]:
    """(key, valid_from_run, body) of each version of `kind` valid at `run`. A body dropped
    by retention is skipped: its digest still anchors the chain, but there is nothing to read."""
    rows = conn.execute(
        sa.select(VERSIONS.c.key, VERSIONS.c.valid_from_run, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == source, VERSIONS.c.kind == kind,
               VERSIONS.c.valid_from_run <= run.run_id,
               sa.or_(VERSIONS.c.valid_to_run.is_(None), VERSIONS.c.valid_to_run > run.run_id)))
    for key, since, body in rows:
        if body is not None:
            yield key, since, decompress(body)
