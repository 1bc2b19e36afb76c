"""The record of full ledger verifications, which `annexa status` reads back.

`annexa verify` and the service's scheduled verify each add one row. Recording is best effort:
a verify run against a database it may only read still verifies and still exits by what it
found; it says that it could not record the verification."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from collector.chain import RUNS, VerifyReport, verify
from collector.db import describe
from collector.schema import LedgerVerification, now

VERIFICATIONS = LedgerVerification.__table__
Verifier = Literal["cli", "service"]


@dataclass(frozen=True)
class Verification:
    started_at: datetime
    finished_at: datetime
    ok: bool
    runs: int
    head_seq: int | None
    by: str
    problem: str | None


def head_seq(conn: Connection) -> int | None:
    return conn.scalar(sa.select(sa.func.max(RUNS.c.seq)))


@dataclass(frozen=True)
class Verified:
    report: VerifyReport
    seconds: float
    unrecorded: str | None  # why the verification could not be recorded, if it could not


def verify_and_record(engine: Engine, public: Ed25519PublicKey, by: Verifier,
                      expect: tuple[int, str] | None = None) -> Verified:
    """A full verify of the ledger (chain.verify), and its record for `annexa status`."""
    with engine.connect() as conn:
        seq = head_seq(conn)
    started_at, started = now(), time.monotonic()
    report = verify(engine, public, expect)
    seconds = time.monotonic() - started
    return Verified(report, seconds, record(engine, report, started_at, now(), seq, by))


def record(engine: Engine, report: VerifyReport, started_at: datetime, finished_at: datetime,
           seq: int | None, by: Verifier) -> str | None:
    """Store one verification; the reason it could not be stored, or None."""
    try:
        with engine.begin() as conn:
            conn.execute(VERIFICATIONS.insert().values(
                started_at=started_at, finished_at=finished_at, ok=report.ok,
                runs=report.runs, head_seq=seq, by=by,
                problem=report.problems[0] if report.problems else None))
    except SQLAlchemyError as exc:
        return describe(exc)
    return None


def last(conn: Connection) -> Verification | None:
    row = conn.execute(sa.select(VERIFICATIONS).order_by(VERIFICATIONS.c.finished_at.desc(),
                                                         VERIFICATIONS.c.id.desc())
                       .limit(1)).first()
    if row is None:
        return None
    return Verification(row.started_at, row.finished_at, bool(row.ok), row.runs, row.head_seq,
                        row.by, row.problem)
