"""Who read what through the auditor API, and when: recorded per request, then sealed into the
ledger as evidence of its own.

Entries wait in `api_access_log` until `seal_pending` writes them as a run of the reserved source
`annexa-access-log`: each entry becomes a resource version (kind `annexa.api_access`, key
`annexa:access:<id>`, its canonical JSON as the blob), and the run is sealed by the same
`chain.seal` as every collection. Each such run closes the entries of the previous one, so a
run's Merkle root covers exactly the entries that it sealed, and `annexa verify` then detects an
entry that was altered, deleted or moved.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from collector import manual_ledger
from collector.canonical import canonical
from collector.ledger import Signer
from collector.manual_ledger import Item
from collector.schema import ApiAccess

ACCESS = ApiAccess.__table__
SOURCE = "annexa-access-log"
KIND = "annexa.api_access"
KEY_PREFIX = "annexa:access:"
_BATCH = 5000  # entries per sealing run, so a backlog never sits in memory at once
_lock = threading.Lock()


@dataclass(frozen=True)
class Access:
    at: datetime
    method: str
    target: str
    status: int
    client: str | None
    token_id: int | None = None
    token_name: str | None = None
    role: str | None = None


def record(engine: Engine, access: Access) -> int:
    with engine.begin() as conn:
        return int(conn.execute(ACCESS.insert().values(
            at=access.at, token_id=access.token_id, token_name=access.token_name,
            role=access.role, method=access.method, target=access.target[:4000],
            status=access.status, client=access.client)).inserted_primary_key[0])


def entry(row: sa.Row) -> dict[str, object]:
    """The evidence form of one access: what the blob holds."""
    return {
        "id": row.id, "at": row.at.isoformat(), "token_id": row.token_id,
        "token_name": row.token_name, "role": row.role, "method": row.method,
        "target": row.target, "status": row.status, "client": row.client,
    }


def entry_body(row: sa.Row) -> bytes:
    """The bytes of an entry's sealed copy: its blob, whose SHA-256 is the copy's digest."""
    return canonical(entry(row))


def seal_pending(engine: Engine, signer: Signer) -> list[int]:
    """Seal every access not yet in the ledger; returns the ids of the runs that sealed them."""
    runs: list[int] = []
    with _lock:
        while True:
            run_id = _seal_batch(engine, signer)
            if run_id is None:
                return runs
            runs.append(run_id)


def _seal_batch(engine: Engine, signer: Signer) -> int | None:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ACCESS).where(ACCESS.c.sealed_run.is_(None))
                            .order_by(ACCESS.c.id).limit(_BATCH)).all()
    if not rows:
        return None
    # Replacing the source's state closes the previous run's entries, so that each run
    # seals only its own.
    written = manual_ledger.write_run(
        engine, signer, SOURCE,
        (Item(KIND, f"{KEY_PREFIX}{row.id}", entry_body(row)) for row in rows),
        replace=True)
    run_id = written.run.run_id
    ids = [r.id for r in rows]
    with engine.begin() as conn:
        for i in range(0, len(ids), 500):  # well under SQLite's bound-parameter limit
            conn.execute(ACCESS.update().where(ACCESS.c.id.in_(ids[i:i + 500]))
                         .values(sealed_run=run_id))
    return run_id
