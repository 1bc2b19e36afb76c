"""The material that the page's script checks for itself: a resource version's digest, its
RFC 6962 inclusion proof in the Merkle root of the last run (by the page's instant) at which it
held, that run's header, chain hash and signature, and the header of the run before it. No
verdict is sent: the browser recomputes each step (collector/web/static/verify.js) as
`annexa verify-bundle` does."""

from __future__ import annotations

import threading
from collections import OrderedDict
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


class Trees:
    """The Merkle trees of the last few runs proved against. A sealed run's state never changes
    (later runs only close intervals after it), so its tree can be kept; rebuilding it costs
    seconds on a large estate (a million leaves), and the versions that held at one instant
    are all proved against the same run."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self._trees: OrderedDict[tuple[int, str], tuple[bytes, MerkleTree]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn: Connection, run: Any) -> tuple[bytes, MerkleTree]:
        key = (run.id, run.chain_hash)
        with self._lock:
            if key in self._trees:
                self._trees.move_to_end(key)
                return self._trees[key]
        packed = bytes(run_state(conn, run.source, run.id).leaves.sorted_bytes())
        built = packed, MerkleTree(packed)
        with self._lock:
            self._trees[key] = built
            while len(self._trees) > self.keep:
                self._trees.popitem(last=False)
        return built


def _proof_run(conn: Connection, version: Any, at: datetime) -> Any:
    """The last sealed run of the version's source, finished by `at`, at which it held."""
    cond = [RUNS.c.source == version.source, RUNS.c.seq.is_not(None), RUNS.c.finished_at <= at,
            RUNS.c.id >= version.valid_from_run]
    if version.valid_to_run is not None:
        cond.append(RUNS.c.id < version.valid_to_run)
    return conn.execute(sa.select(RUNS).where(*cond).order_by(RUNS.c.id.desc()).limit(1)).first()


def material(conn: Connection, who: Principal, trees: Trees, version_id: int,
             at: datetime) -> dict[str, Any] | None:
    version = conn.execute(sa.select(VERSIONS).where(VERSIONS.c.id == version_id)).first()
    if version is None:
        return None
    run = _proof_run(conn, version, at)
    if run is None:
        return None
    if who.window_start is not None and version.valid_to_run is not None:
        ended = _sealed(conn, id=version.valid_to_run)
        if ended is not None and ended.finished_at <= who.window_start:
            return None
    packed, tree = trees.get(conn, run)
    index = _index(packed, ledger.resource_leaf(version.key, version.digest))
    proof = None if index is None else {
        "run": run.id, "index": index, "size": len(packed) // 32, "path": tree.path(index)}
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
