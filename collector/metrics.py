"""Prometheus metrics. Posture gauges are recomputed from the database after each run, so a
restarted service reports the same numbers; counters count what this process observed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine

from collector.posture import control_states, latest_runs
from collector.schema import now

if TYPE_CHECKING:
    from collector.pipeline import RunOutcome

CONTROL_STATUSES = ("pass", "fail", "stale", "unknown", "manual", "not_applicable")
RESULT_STATUSES = ("pass", "fail", "error", "not_applicable")


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.control_status = Gauge(
            "annexa_control_status", "1 for the current status of each Annex A control",
            ["control", "theme", "title", "status"], registry=r)
        self.check_resources = Gauge(
            "annexa_check_resources", "Resources per check and result status",
            ["check", "severity", "status"], registry=r)
        self.duration = Histogram(
            "annexa_collection_duration_seconds", "Wall time of one collection",
            ["source"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600), registry=r)
        self.last_success = Gauge(
            "annexa_collection_last_success_timestamp_seconds",
            "Unix time of the last collection that completed (possibly with service errors)",
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

    def observe_api(self, source: str) -> Callable[[str, str, int, int], None]:
        def observer(service: str, _operation: str, status: int, retries: int) -> None:
            self.api_calls.labels(source, service, str(status)).inc()
            if retries:
                self.api_retries.labels(source, service).inc(retries)
        return observer

    def observe_run(self, outcome: RunOutcome) -> None:
        self.duration.labels(outcome.source).observe(outcome.seconds)
        self.runs.labels(outcome.source, outcome.status).inc()
        for err in outcome.errors:
            self.errors.labels(outcome.source, err.service).inc()
        if outcome.status == "failed":
            self.errors.labels(outcome.source, "source").inc()

    def refresh_posture(self, engine: Engine, freshness: timedelta) -> None:
        with engine.connect() as conn:
            at = now()
            states = control_states(conn, at, freshness)
            for run in latest_runs(conn, at):
                if run.evidence_at:
                    self.last_success.labels(run.source).set(run.evidence_at.timestamp())
        self.control_status.clear()
        self.check_resources.clear()
        seen: set[str] = set()
        for control in states:
            for status in CONTROL_STATUSES:
                self.control_status.labels(control.id, control.theme, control.title,
                                           status).set(1 if status == control.status else 0)
            for chk in control.checks:
                if chk.check.id in seen:
                    continue
                seen.add(chk.check.id)
                for status in RESULT_STATUSES:
                    self.check_resources.labels(chk.check.id, chk.check.severity,
                                                status).set(chk.counts.get(status, 0))
