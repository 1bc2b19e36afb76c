"""The material that the page's script checks for itself: a resource version's digest, its
RFC 6962 inclusion proof in the Merkle root of the run that recorded it, that run's header,
chain hash and signature, and the header of the run before it. No verdict is sent: the
browser recomputes each step (collector/web/static/verify.js) as `annexa verify-bundle` does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from collector import ledger
from collector.bundle import MerkleTree
from collector.chain import RUNS, run_errors, run_state
from collector.store import VERSIONS
from collector.tokens import Principal


def _entry(conn: Connection, run: Any) -> dict[str, Any]:
    return {"header": ledger.run_header(run, run_errors(conn, run.id)),
            "chain_hash": run.chain_hash, "signature": run.signature, "key_id": run.key_id,
            "handover_signature": run.handover_signature}


def _sealed(conn: Connection, **where: Any) -> Any:
    cond = [RUNS.c[k] == v for k, v in where.items()]
    return conn.execute(sa.select(RUNS).where(RUNS.c.seq.is_not(None), *cond)).first()


def _visible(who: Principal, run: Any, at: datetime) -> bool:
    return run.finished_at is not None and run.finished_at <= at and (
        who.window_start is None or run.finished_at >= who.window_start)


def _index(packed: bytes, leaf: bytes) -> int | None:
    """The position of `leaf` among sorted leaves packed 32 bytes apiece."""
    lo, hi = 0, len(packed) // 32
    while lo < hi:
        mid = (lo + hi) // 2
        if packed[mid * 32:mid * 32 + 32] < leaf:
            lo = mid + 1
        else:
            hi = mid
    return lo if packed[lo * 32:lo * 32 + 32] == leaf else None


def material(conn: Connection, who: Principal, version_id: int,
             at: datetime) -> dict[str, Any] | None:
    version = conn.execute(sa.select(VERSIONS).where(VERSIONS.c.id == version_id)).first()
    if version is None:
        return None
    run = _sealed(conn, id=version.valid_from_run)
    if run is None or not run.finished_at <= at:
        return None
    if who.window_start is not None and version.valid_to_run is not None:
        ended = _sealed(conn, id=version.valid_to_run)
        if ended is not None and ended.finished_at <= who.window_start:
            return None
    packed = bytes(run_state(conn, run.source, run.id).leaves.sorted_bytes())
    index = _index(packed, ledger.resource_leaf(version.key, version.digest))
    proof = None if index is None else {
        "run": run.id, "index": index, "size": len(packed) // 32,
        "path": MerkleTree(packed).path(index)}
    before = _sealed(conn, seq=run.seq - 1) if run.seq > 1 else None
    return {
        "version": version.id, "source": version.source, "key": version.key,
        "digest": version.digest, "evidence_url": f"/evidence/{version.digest}",
        "proof": proof, "run": _entry(conn, run),
        "previous": None if before is None else {
            "header": ledger.run_header(before, run_errors(conn, before.id)),
            "chain_hash": before.chain_hash},
        "genesis": ledger.GENESIS,
    }


def run_page(conn: Connection, who: Principal, run_id: int, at: datetime
             ) -> dict[str, Any] | None:
    run = _sealed(conn, id=run_id)
    if run is None or not _visible(who, run, at):
        return None
    before = _sealed(conn, seq=run.seq - 1) if run.seq > 1 else None
    after = _sealed(conn, seq=run.seq + 1)
    return {**_entry(conn, run), "message": run.message,
            "before": before.id if before is not None and _visible(who, before, at) else None,
            "after": after.id if after is not None and _visible(who, after, at) else None}
