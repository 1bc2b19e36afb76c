"""The evidence store's tables. Only Alembic migrations change them (see migrations/).

Evidence is append-only: blobs are content-addressed; resource versions and check results are
validity intervals [valid_from_run, valid_to_run) whose only later write is closing the interval.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Id = BigInteger().with_variant(Integer, "sqlite")
# A run's id in the evidence tables, without a foreign key: PostgreSQL would check each inserted
# row with a trigger, and the ledger already proves what rows belong to which run (0005).
RunRef = Id


class UtcDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC on every backend, read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Run(Base):
    """One collection of one source. Sealed runs form a hash chain ordered by `seq`."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # running, complete, partial (some services failed), failed, interrupted
    status: Mapped[str] = mapped_column(String(20))
    resources: Mapped[int] = mapped_column(Integer, default=0)
    results: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    merkle_root: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    chain_hash: Mapped[str | None] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(64))
    # JSON {check id: {status: count}} of the results valid at the run, written when it is
    # sealed: posture reads these instead of counting the results of a whole estate. Not in
    # the chain hash; `annexa verify` recomputes them from the evidence.
    result_counts: Mapped[str | None] = mapped_column(Text)
    # The first run a new signing key seals: JSON {"key_id", "public_key", "previous_key_id"}
    # (in the chain hash), and the retired key's signature over the same chain hash, so that
    # the chain carries its own key history.
    key_change: Mapped[str | None] = mapped_column(Text)
    handover_signature: Mapped[str | None] = mapped_column(String(128))


class CollectionErrorRow(Base):
    """A service and region that could not be read in a run (sealed with the run's header)."""

    __tablename__ = "collection_errors"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    scope: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(100))
    kinds: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)


class Blob(Base):
    """Canonical redacted JSON, stored once per SHA-256 digest (body compressed: Zstandard, or
    zlib in stores written before it; store.decompress() reads both)."""

    __tablename__ = "blobs"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_run: Mapped[int] = mapped_column(RunRef)


class ResourceVersion(Base):
    __tablename__ = "resource_versions"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    valid_from_run: Mapped[int] = mapped_column(RunRef)
    valid_to_run: Mapped[int | None] = mapped_column(RunRef)

    __table_args__ = (
        # Every version of a key, not only the open one: the writer finds open versions by key
        # and a snapshot finds the versions of its failing resources valid at a past run.
        Index("ix_resource_versions_key", "source", "key", "valid_from_run"),
        Index("ix_resource_versions_from", "source", "valid_from_run"),
        Index("ix_resource_versions_to", "source", "valid_to_run"),
    )


class CheckResult(Base):
    __tablename__ = "check_results"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    check_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)  # JSON list of blob digests
    result_digest: Mapped[str] = mapped_column(String(64))
    valid_from_run: Mapped[int] = mapped_column(RunRef)
    valid_to_run: Mapped[int | None] = mapped_column(RunRef)

    __table_args__ = (
        Index("ix_check_results_open", "source", "subject",
              sqlite_where=valid_to_run.is_(None), postgresql_where=valid_to_run.is_(None)),
        Index("ix_check_results_from", "source", "valid_from_run"),
        Index("ix_check_results_to", "source", "valid_to_run"),
        # Failing and erroring results valid at a run, without reading the passing ones.
        Index("ix_check_results_notable", "source", "valid_to_run", "valid_from_run",
              sqlite_where=status.in_(("fail", "error")),
              postgresql_where=status.in_(("fail", "error"))),
    )


class SigningKey(Base):
    __tablename__ = "signing_keys"
    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))  # raw Ed25519 public key, hex
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A bearer token of the auditor API. Only the SHA-256 of the token is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Role `owner`: the JSON list of the control ids that the token may attest.
    controls: Mapped[str | None] = mapped_column(Text)


class ApiAccess(Base):
    """One request to the auditor API; sealed into the ledger by the run in `sealed_run`."""

    __tablename__ = "api_access_log"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    token_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)  # path and query string
    status: Mapped[int] = mapped_column(Integer)
    client: Mapped[str | None] = mapped_column(String(100))
    sealed_run: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))

    __table_args__ = (
        Index("ix_api_access_log_pending", "id",
              sqlite_where=sealed_run.is_(None), postgresql_where=sealed_run.is_(None)),
    )


class RunLock(Base):
    """The process collecting a source now (SQLite; PostgreSQL uses advisory locks), so that
    only one run of a source is in progress at a time: `holder` names the host, process id
    and process start time, which tell a lock left by a killed process from a live one."""

    __tablename__ = "run_locks"
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(300))
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LedgerVerification(Base):
    """One full verification of the ledger (`annexa verify`, or the service's daily one), so
    that `annexa status` can say when the ledger was last verified and whether it held. A
    health record, not evidence: it is outside the chain, which a verify must not change."""

    __tablename__ = "ledger_verifications"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    runs: Mapped[int] = mapped_column(Integer)
    head_seq: Mapped[int | None] = mapped_column(Integer)  # the newest run it verified
    by: Mapped[str] = mapped_column(String(20))  # `cli` (annexa verify) or `service`
    problem: Mapped[str | None] = mapped_column(Text)  # the first broken record, if any


def now() -> datetime:
    return datetime.now(UTC)
