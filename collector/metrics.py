"""Prometheus metrics. Posture, ledger and storage gauges are recomputed from the database, so a
restarted service reports the same numbers; counters count what this process observed.

Every label set is bounded: control (the 93 of Annex A), theme (4), check (the registry), source
(the configuration), service (the connectors' services), status (fixed lists). Resource ids
never become labels."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from apscheduler.triggers.cron import CronTrigger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine

from checks.registry import REGISTRY
from collector.chain import RUNS, chain_head, hash_prefix
from collector.config import SourceConfig, parse_schedule
from collector.posture import SourceRun, control_states, latest_runs, result_counts
from collector.schema import now
from collector.store import BLOBS

if TYPE_CHECKING:
    from collector.chain import VerifyReport
    from collector.pipeline import RunOutcome

CONTROL_STATUSES = ("pass", "fail", "stale", "unknown", "manual", "not_applicable")
RESULT_STATUSES = ("pass", "fail", "error", "not_applicable")
RUN_STATUSES = ("complete", "partial", "failed", "interrupted", "retired")
# A cron schedule's expected interval is its longest gap over this many firings, so that a
# weekday-only schedule is not reported overdue every weekend.
CRON_HORIZON = 500


def schedule_interval(schedule: str) -> timedelta:
    """The longest time a source may wait between two scheduled collections."""
    kind, value = parse_schedule(schedule)
    if kind == "interval":
        return value
    trigger = CronTrigger.from_crontab(value, timezone="UTC")
    fire = trigger.get_next_fire_time(None, now())
    longest = timedelta(0)
    for _ in range(CRON_HORIZON):
        after = trigger.get_next_fire_time(fire, fire)
        if after is None:
            break
        longest = max(longest, after - fire)
        fire = after
    return longest


class _Labelled:
    """A labelled gauge whose set of series is replaced by each refresh: series are updated in
    place and only those no longer reported are removed, so a scrape never sees the set empty."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._keys: set[tuple[str, ...]] = set()

    def replace(self, values: Mapping[tuple[str, ...], float]) -> None:
        for key, value in values.items():
            self.gauge.labels(*key).set(value)
        for key in self._keys - values.keys():
            self.gauge.remove(*key)
        self._keys = set(values)


class _EvidenceAge(Collector):
    """annexa_evidence_age_seconds, computed at scrape time from the evidence timestamps that
    the last refresh read, so the age keeps growing even when no collection runs."""

    NAME = "annexa_evidence_age_seconds"
    DOC = "Age of the newest evidence a control rests on, per source"

    def __init__(self) -> None:
        self.newest: dict[tuple[str, str], datetime] = {}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.NAME, self.DOC, labels=["source", "control"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.NAME, self.DOC, labels=["source", "control"])
        at = now()
        for (source, control), evidence_at in sorted(self.newest.items()):
            family.add_metric([source, control], (at - evidence_at).total_seconds())
        yield family


@dataclass(frozen=True)
class _LastRun:
    status: str
    seconds: float


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._lock = threading.Lock()
        ProcessCollector(registry=r)
        # Posture, from the database.
        self.control_status = _Labelled(Gauge(
            "annexa_control_status", "1 for the current status of each Annex A control",
            ["control", "theme", "title", "status"], registry=r))
        self.check_resources = _Labelled(Gauge(
            "annexa_check_resources", "Resources per check and result status",
            ["check", "severity", "source_kind", "status"], registry=r))
        self.evidence_age = _EvidenceAge()
        r.register(self.evidence_age)
        self.freshness = Gauge(
            "annexa_evidence_freshness_window_seconds",
            "Evidence older than this makes the controls resting on it stale", registry=r)
        # Collections.
        self.duration = Histogram(
            "annexa_collection_duration_seconds", "Wall time of one collection",
            ["source"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600), registry=r)
        self.last_success = _Labelled(Gauge(
            "annexa_collection_last_success_timestamp_seconds",
            "Unix time of the last collection that completed (possibly with service errors)",
            ["source"], registry=r))
        self.last_duration = _Labelled(Gauge(
            "annexa_collection_last_duration_seconds", "Wall time of the last sealed collection",
            ["source"], registry=r))
        self.last_status = _Labelled(Gauge(
            "annexa_collection_last_status", "1 for the outcome of the last sealed collection",
            ["source", "status"], registry=r))
        self.schedule = Gauge(
            "annexa_source_schedule_interval_seconds",
            "Longest time between two scheduled collections of the source",
            ["source"], registry=r)
        self.runs = Counter(
            "annexa_collection_runs_total", "Collections by outcome",
            ["source", "status"], registry=r)
        self.errors = Counter(
            "annexa_collection_errors_total",
            "Services or regions that could not be read, and collections that failed",
            ["source", "service"], registry=r)
        self.api_calls = Counter(
            "annexa_api_requests_total", "Provider API calls made by connectors",
            ["source", "service", "code"], registry=r)
        self.api_retries = Counter(
            "annexa_api_retries_total", "Provider API retries (throttling or transient errors)",
            ["source", "service"], registry=r)
        # The ledger and the evidence store, from the database.
        self.sealed = _Labelled(Gauge(
            "annexa_ledger_sealed_runs", "Runs sealed into the ledger, by source and outcome",
            ["source", "status"], registry=r))
        self.verify_ok = Gauge(
            "annexa_ledger_verify_ok", "1 if the service's last ledger verification found it "
            "intact, 0 if broken", registry=r)
        self.verify_at = Gauge(
            "annexa_ledger_last_verify_timestamp_seconds",
            "Unix time at which the service last finished verifying the ledger", registry=r)
        self.verify_seconds = Gauge(
            "annexa_ledger_verify_duration_seconds", "Wall time of the last ledger verification",
            registry=r)
        # The chain's head, so that Prometheus keeps a witness of it outside the database:
        # no database can prove that its own newest runs were not removed.
        self.head_seq = Gauge(
            "annexa_ledger_head_seq", "Sequence number of the newest sealed run", registry=r)
        self.head_hash = Gauge(
            "annexa_ledger_head_hash_prefix",
            "The newest sealed run's chain hash: its first 13 hex digits (52 bits) as a number",
            registry=r)
        self.blobs = Gauge(
            "annexa_evidence_blobs", "Evidence blobs stored (one per distinct content digest)",
            registry=r)
        self.blob_bytes = Gauge(
            "annexa_evidence_blob_bytes", "Size of the stored evidence as canonical JSON",
            registry=r)
        self.stored_bytes = Gauge(
            "annexa_evidence_stored_bytes",
            "Size of the stored (compressed) evidence blob bodies; pruned bodies count 0",
            registry=r)
        # Manual controls: when the attestation in force of each applicable control is due.
        self.review_due = _Labelled(Gauge(
            "annexa_attestation_review_due_timestamp_seconds",
            "Unix time at which the attestation in force of the control is due for review",
            ["control"], registry=r))

    def watch_sources(self, sources: Iterable[SourceConfig]) -> None:
        """Publish each configured source's schedule, and start its counters at zero so that
        rate() and increase() see the first collection, failure and error."""
        for source in sources:
            self.schedule.labels(source.name).set(
                schedule_interval(source.schedule).total_seconds())
            for status in RUN_STATUSES:
                self.runs.labels(source.name, status)
            self.errors.labels(source.name, "source")

    def observe_api(self, source: str) -> Callable[[str, str, int, int], None]:
        def observer(service: str, _operation: str, status: int, retries: int) -> None:
            self.api_calls.labels(source, service, str(status)).inc()
            # Zero from the service's first call on, so that rate() sees the first retry.
            self.api_retries.labels(source, service).inc(retries)
        return observer

    def observe_run(self, outcome: RunOutcome) -> None:
        self.duration.labels(outcome.source).observe(outcome.seconds)
        self.runs.labels(outcome.source, outcome.status).inc()
        for err in outcome.errors:
            self.errors.labels(outcome.source, err.service).inc()
        if outcome.status == "failed":
            self.errors.labels(outcome.source, "source").inc()

    def refresh_head(self, engine: Engine) -> None:
        with engine.connect() as conn:
            head = chain_head(conn)
        with self._lock:
            self.observe_head(head)

    def observe_head(self, head: tuple[int, str] | None) -> None:
        if head is not None:
            self.head_seq.set(head[0])
            self.head_hash.set(hash_prefix(head[1]))

    def observe_verify(self, report: VerifyReport, seconds: float) -> None:
        self.verify_ok.set(1 if report.ok else 0)
        self.verify_seconds.set(seconds)
        self.verify_at.set(time.time())

    def refresh_posture(self, engine: Engine, freshness: timedelta) -> None:
        """Recompute every database-derived gauge. Posture appears once a run is sealed:
        before that there is nothing to report, and a burst of `unknown` would make every
        first failure look like a new one."""
        with engine.connect() as conn:
            at = now()
            runs = latest_runs(conn, at)
            states = control_states(conn, at, freshness) if runs else []
            newest = _newest_evidence(conn, runs)
            sealed = _sealed_runs(conn)
            last = _last_runs(conn)
            blobs, blob_bytes, stored_bytes = _storage(conn)
            head = chain_head(conn)
        with self._lock:
            self.observe_head(head)
            self.freshness.set(freshness.total_seconds())
            self.last_success.replace({(run.source,): run.evidence_at.timestamp()
                                       for run in runs if run.evidence_at})
            self.control_status.replace({
                (control.id, control.theme, control.title, status):
                    1 if status == control.status else 0
                for control in states for status in CONTROL_STATUSES})
            checks = {chk.check.id: chk for control in states for chk in control.checks}
            self.check_resources.replace({
                (chk.check.id, chk.check.severity, chk.check.provider, status):
                    chk.counts.get(status, 0)
                for chk in checks.values() for status in RESULT_STATUSES})
            self.evidence_age.newest = newest
            self.sealed.replace(sealed)
            self.last_duration.replace({(source,): run.seconds for source, run in last.items()})
            self.last_status.replace({(source, status): 1 if status == run.status else 0
                                      for source, run in last.items() for status in RUN_STATUSES})
            self.blobs.set(blobs)
            self.blob_bytes.set(blob_bytes)
            self.stored_bytes.set(stored_bytes)
            self.review_due.replace({
                (control.id,): control.attestation.review_due.timestamp() for control in states
                if control.attestation and (control.soa is None or control.soa.applicable)})


def _newest_evidence(conn: Connection, runs: list[SourceRun]) -> dict[tuple[str, str], datetime]:
    """(source, control) -> when that source last delivered the evidence the control rests on:
    the controls of every check with a result valid at the source's latest run (read from the
    run's result counts: the results themselves are a whole estate's)."""
    out: dict[tuple[str, str], datetime] = {}
    for run in runs:
        if run.evidence_at is None:
            continue
        for check_id in result_counts(conn, run):
            check = REGISTRY.get(check_id)
            for control in check.controls if check else ():
                out[(run.source, control)] = run.evidence_at
    return out


def _sealed_runs(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(sa.select(RUNS.c.source, RUNS.c.status, sa.func.count())
                        .where(RUNS.c.seq.is_not(None)).group_by(RUNS.c.source, RUNS.c.status))
    return {(source, status): n for source, status, n in rows}


def _last_runs(conn: Connection) -> dict[str, _LastRun]:
    newest = (sa.select(sa.func.max(RUNS.c.seq)).where(RUNS.c.seq.is_not(None))
              .group_by(RUNS.c.source))
    rows = conn.execute(sa.select(RUNS.c.source, RUNS.c.status, RUNS.c.started_at,
                                  RUNS.c.finished_at).where(RUNS.c.seq.in_(newest)))
    return {source: _LastRun(status, (finished - started).total_seconds())
            for source, status, started, finished in rows if finished is not None}


def _storage(conn: Connection) -> tuple[int, int, int]:
    count, size, stored = conn.execute(sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(BLOBS.c.size), 0),
        sa.func.coalesce(sa.func.sum(sa.func.length(BLOBS.c.body)), 0))).one()
    return int(count), int(size), int(stored)
