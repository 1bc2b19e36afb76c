"""`annexa status`: per source its last run, next scheduled run and evidence freshness, and the
service's own health (the store, the last verify, the API and metrics listening).

Read from the store and by connecting to the configured ports: it collects nothing, and works
whether or not the service is running."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from collector import migrate, schedules, verifications
from collector.chain import RUNS
from collector.config import Config, SourceConfig
from collector.metrics import schedule_interval
from collector.organizations import is_split, units_of
from collector.people.records import SOURCE as PEOPLE_SOURCE

# Runs whose collection delivered evidence (as posture counts them).
COLLECTED = ("complete", "partial")
# How long a port may take to accept a connection before it is reported as not answering.
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class LastRun:
    run_id: int
    seq: int
    status: str
    started_at: datetime
    finished_at: datetime
    resources: int
    errors: int
    message: str | None
    chain_hash: str

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "seq": self.seq, "status": self.status,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "duration_seconds": round(self.seconds, 3), "resources": self.resources,
                "errors": self.errors, "message": self.message,
                "chain_head": f"{self.seq}:{self.chain_hash}"}


@dataclass
class SourceStatus:
    name: str
    kind: str
    schedule: str
    last_run: LastRun | None
    evidence_at: datetime | None
    freshness: str  # fresh, stale, never; `retired` for an account no longer collected
    evidence_age_seconds: float | None
    next_run_at: datetime | None  # None: at once (never collected, or the schedule is over)
    next_run_overdue: bool
    # A newer run not sealed yet: being collected now, or left by a process that was killed
    # (the source's next collection seals it as interrupted).
    unsealed_since: datetime | None = None
    units: list[SourceStatus] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Why this source makes `annexa status` exit 1."""
        out = []
        run = self.last_run
        if run is not None and run.status == "failed":
            out.append(f"{self.name}: last run #{run.seq} failed: {run.message or 'no message'}")
        if self.freshness == "never":
            out.append(f"{self.name}: no evidence collected yet")
        elif self.freshness == "stale":
            assert self.evidence_at is not None
            out.append(f"{self.name}: evidence is stale: the newest is from "
                       f"{self.evidence_at.isoformat(timespec='seconds')}")
        return out + [p for unit in self.units for p in unit.problems()]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "schedule": self.schedule,
                "last_run": self.last_run.as_dict() if self.last_run else None,
                "next_run_at": self.next_run_at.isoformat() if self.next_run_at else None,
                "next_run_overdue": self.next_run_overdue,
                "evidence_at": self.evidence_at.isoformat() if self.evidence_at else None,
                "evidence_age_seconds": None if self.evidence_age_seconds is None
                else round(self.evidence_age_seconds, 3),
                "freshness": self.freshness,
                "unsealed_since": self.unsealed_since.isoformat() if self.unsealed_since
                else None,
                "units": [unit.as_dict() for unit in self.units]}


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int
    enabled: bool
    listening: bool
    detail: str  # the cause when not listening

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "enabled": self.enabled,
                "listening": self.listening, "detail": self.detail}


@dataclass
class Status:
    at: datetime
    freshness_window: timedelta
    sources: list[SourceStatus]
    people: SourceStatus | None
    store: dict[str, Any]
    last_verify: verifications.Verification | None
    api: Listener
    metrics: Listener

    def problems(self) -> list[str]:
        out = [p for s in self.sources for p in s.problems()]
        if self.people is not None:
            out += self.people.problems()
        if self.last_verify is not None and not self.last_verify.ok:
            out.append(f"the ledger was found BROKEN by the last verify "
                       f"({self.last_verify.finished_at.isoformat(timespec='seconds')}): "
                       f"{self.last_verify.problem}")
        return out

    def as_dict(self) -> dict[str, Any]:
        verify = self.last_verify
        return {
            "at": self.at.isoformat(), "ok": not self.problems(), "problems": self.problems(),
            "freshness_window_seconds": self.freshness_window.total_seconds(),
            "sources": [s.as_dict() for s in self.sources],
            "people": self.people.as_dict() if self.people else None,
            "service": {
                "store": self.store,
                "last_verify": None if verify is None else {
                    "started_at": verify.started_at.isoformat(),
                    "finished_at": verify.finished_at.isoformat(),
                    "age_seconds": round((self.at - verify.finished_at).total_seconds(), 3),
                    "ok": verify.ok, "runs": verify.runs, "head_seq": verify.head_seq,
                    "by": verify.by, "problem": verify.problem},
                "api": self.api.as_dict(), "metrics": self.metrics.as_dict()}}


def gather(cfg: Config, engine: Engine, at: datetime) -> Status:
    with engine.connect() as conn:
        sources = [_source(conn, s, at, cfg.freshness_window) for s in cfg.sources]
        people = None
        if cfg.people is not None:
            people = _status(conn, PEOPLE_SOURCE, "people", cfg.people.schedule, at,
                             cfg.freshness_window)
        last_verify = verifications.last(conn)
    store = {"database": engine.url.render_as_string(hide_password=True), "reachable": True,
             "revision": migrate.current(engine), "migrated": True}
    api = (probe("api", cfg.api.host, cfg.api.port) if cfg.api.enabled else
           Listener("api", cfg.api.host, cfg.api.port, False, False,
                    "disabled (api.enabled: false)"))
    metrics = probe("metrics", cfg.metrics.host, cfg.metrics.port)
    return Status(at, cfg.freshness_window, sources, people, store, last_verify, api, metrics)


def _source(conn: Connection, source: SourceConfig, at: datetime,
            window: timedelta) -> SourceStatus:
    status = _status(conn, source.name, source.kind, source.schedule, at, window)
    if not is_split(source):
        return status
    status.units = [_status(conn, name, source.kind, source.schedule, at, window)
                    for name in sorted(units_of(conn, source.name))]
    for unit in status.units:
        if unit.last_run is not None and unit.last_run.status == "retired":
            unit.freshness, unit.next_run_at, unit.next_run_overdue = "retired", None, False
    _reschedule_split(status, at)
    return status


def _reschedule_split(org: SourceStatus, at: datetime) -> None:
    """A split source's collection fires once and runs its units before sealing its own run:
    the firing was when the first unit of that collection started. Its units are collected in
    that collection, not on their own."""
    if org.last_run is None:
        return
    window = schedule_interval(org.schedule)
    starts = [u.last_run.started_at for u in org.units if u.last_run is not None
              and u.freshness != "retired"
              and org.last_run.started_at - window <= u.last_run.started_at
              <= org.last_run.started_at]
    fired = min([org.last_run.started_at, *starts])
    org.next_run_at = schedules.next_after(org.schedule, fired)
    org.next_run_overdue = org.next_run_at is not None and org.next_run_at <= at
    for unit in org.units:
        if unit.freshness != "retired":
            unit.next_run_at, unit.next_run_overdue = org.next_run_at, org.next_run_overdue


def _status(conn: Connection, name: str, kind: str, schedule: str, at: datetime,
            window: timedelta) -> SourceStatus:
    sealed = (sa.select(RUNS).where(RUNS.c.source == name, RUNS.c.seq.is_not(None),
                                    RUNS.c.finished_at <= at)
              .order_by(RUNS.c.id.desc()).limit(1))
    row = conn.execute(sealed).first()
    last = None if row is None else LastRun(
        row.id, row.seq, row.status, row.started_at, row.finished_at, row.resources,
        row.errors, row.message, row.chain_hash)
    evidence_at = conn.scalar(sa.select(RUNS.c.finished_at).where(
        RUNS.c.source == name, RUNS.c.seq.is_not(None), RUNS.c.finished_at <= at,
        RUNS.c.status.in_(COLLECTED)).order_by(RUNS.c.id.desc()).limit(1))
    age = None if evidence_at is None else (at - evidence_at).total_seconds()
    freshness = ("never" if age is None else
                 "stale" if age > window.total_seconds() else "fresh")
    # The service collects every source at its start; after that the schedule follows the
    # firing of the last run, which started it.
    next_at = None if last is None else schedules.next_after(schedule, last.started_at)
    unsealed = conn.scalar(sa.select(sa.func.min(RUNS.c.started_at)).where(
        RUNS.c.source == name, RUNS.c.seq.is_(None), RUNS.c.id > (last.run_id if last else 0)))
    return SourceStatus(name, kind, schedule, last, evidence_at, freshness, age, next_at,
                        next_at is None or next_at <= at, unsealed)


def probe(name: str, host: str, port: int) -> Listener:
    """Whether something accepts connections at host:port; the cause when nothing does."""
    if port == 0:
        return Listener(name, host, port, True, False,
                        "port 0 (a free port picked at each start) cannot be probed")
    # A service bound to every address is reached on loopback.
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=PROBE_TIMEOUT):
            return Listener(name, host, port, True, True, "listening")
    except socket.gaierror as exc:
        cause = f"host name {target!r} not resolved: {exc.strerror}"
    except TimeoutError:
        cause = f"no answer within {PROBE_TIMEOUT:g}s"
    except ConnectionRefusedError:
        cause = "connection refused (is `annexa run` running?)"
    except OSError as exc:
        cause = exc.strerror or str(exc)
    return Listener(name, host, port, True, False, cause)
