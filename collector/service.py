"""`annexa run`: APScheduler runs each source on its schedule, Prometheus scrapes /metrics, and
SIGTERM or SIGINT stops the service without leaving a half-sealed run."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import start_http_server
from sqlalchemy import Engine

from collector import access_log, schedules, verifications
from collector.api import ApiServer, create_app
from collector.api.bad_tokens import BadTokenLimiter
from collector.chain import VerifyReport
from collector.cluster.dispatch import NotSealed
from collector.config import Config, SourceConfig
from collector.ledger import Signer
from collector.locks import NotStarted
from collector.metrics import Metrics
from collector.organizations import UnitRunner, collect
from collector.pipeline import RunOutcome

log = logging.getLogger("annexa.service")

# How often the service re-verifies the whole ledger for annexa_ledger_verify_ok. A full verify
# recomputes every digest and Merkle root, so it runs daily rather than after each collection.
VERIFY_EVERY = timedelta(hours=24)


class Service:
    def __init__(self, config: Config, engine: Engine, signer: Signer,
                 metrics: Metrics | None = None,
                 on_run: Callable[[RunOutcome], None] | None = None,
                 verify_every: timedelta | None = VERIFY_EVERY) -> None:
        self.config = config
        self.engine = engine
        self.signer = signer
        self.metrics = metrics or Metrics()
        self.stop = threading.Event()
        self.api: ApiServer | None = None
        self._on_run = on_run
        self.verify_every = verify_every
        self._app: Any = None  # the Celery app, made at the first queued collection
        self.metrics.watch_sources(config.sources)
        # One worker more than collections need, so that a long ledger verify never delays one.
        workers = max(1, min(4, len(config.sources))) + 1
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)}, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})

    def collect(self, source: SourceConfig, *, join_people: bool = True) -> RunOutcome | None:
        """One scheduled collection; None when another process (`annexa collect` by hand,
        say) is collecting the source now: its run counts, and the next firing tries again.
        An organisation's accounts are runs of their own, observed one by one; its own run,
        sealed last, is returned. People are joined again after it, unless the caller joins
        them once after several."""
        try:
            outcomes = collect(self.engine, source, self.signer, stop=self.stop,
                               api_observer=self.metrics.observe_api(source.name),
                               writer=self.config.writer, run_units=self._queue_runner())
        except (NotStarted, NotSealed) as exc:
            log.warning("%s: skipped this collection", exc)
            return None
        for outcome in outcomes:
            self.metrics.observe_run(outcome)
            log.info("run %s of %s: %s (%d resources, %.1fs)", outcome.run_id, outcome.source,
                     outcome.status, outcome.stats.resources, outcome.seconds)
        self.metrics.refresh_posture(self.engine, self.config.freshness_window)
        for outcome in outcomes:
            if self._on_run:
                self._on_run(outcome)
        if join_people and self.config.people is not None:
            self.join_people()
        return outcomes[-1] if outcomes else None

    def _queue_runner(self) -> UnitRunner | None:
        """With `queue:`, this service schedules and enqueues; `annexa worker`s collect."""
        if self.config.queue is None:
            return None
        if self._app is None:
            from collector.cluster.app import make_app

            self._app = make_app(self.config)
        from collector.cluster.dispatch import queue_runner

        return queue_runner(self._app, self.engine, self.config.queue.wait_seconds)

    def join_people(self) -> RunOutcome | None:
        """A run of `annexa-people`, after any source's run and on its own schedule."""
        from collector.people.mapping import MappingError
        from collector.people.run import collect_people

        try:
            # A source's run that ends while people are being joined waits for that join.
            outcome = collect_people(self.engine, self.config, self.signer, stop=self.stop,
                                     wait=300)
        except (NotStarted, MappingError) as exc:
            log.error("people not joined: %s", exc)
            return None
        self.metrics.observe_run(outcome)
        self.metrics.refresh_posture(self.engine, self.config.freshness_window)
        log.info("run %s of %s: %s (%d records, %.1fs)", outcome.run_id, outcome.source,
                 outcome.status, outcome.stats.resources, outcome.seconds)
        return outcome

    def verify_ledger(self) -> VerifyReport:
        verified = verifications.verify_and_record(self.engine, self.signer.public, "service")
        report = verified.report
        self.metrics.observe_verify(report, verified.seconds)
        if verified.unrecorded:
            log.warning("the verification was not recorded for `annexa status`: %s",
                        verified.unrecorded)
        if report.ok:
            log.info("ledger intact: %d runs verified", report.runs)
        else:
            log.error("ledger BROKEN: %s", report.problems[0])
        return report

    def seal_access_log(self) -> None:
        runs = access_log.seal_pending(self.engine, self.signer)
        if runs:
            log.info("API access log sealed in run(s) %s", ", ".join(map(str, runs)))
            self.metrics.refresh_head(self.engine)

    def _start_api(self) -> ApiServer:
        cfg = self.config.api
        app = create_app(self.engine, self.config.freshness_window, self.signer.public_hex,
                         self.signer, BadTokenLimiter(cfg.bad_token_limit, cfg.bad_token_every))
        api = ApiServer(app, cfg.host, cfg.port)
        api.start()
        log.info("auditor API on %s", api.url)
        return api

    def _schedule(self, source: SourceConfig, collect_at_start: bool) -> None:
        trigger = schedules.trigger(source.schedule)
        # By default every source is collected once at start, so a restarted service has
        # fresh evidence instead of waiting for the next cron slot.
        first = datetime.now(UTC) if collect_at_start else trigger.get_next_fire_time(
            None, datetime.now(UTC))
        self.scheduler.add_job(self.collect, trigger, args=[source], id=source.name,
                               name=f"collect {source.name}", next_run_time=first)

    def serve(self, install_signals: bool = True, collect_at_start: bool = True) -> None:
        server, thread = start_http_server(self.config.metrics.port, self.config.metrics.host,
                                           registry=self.metrics.registry)
        log.info("metrics on http://%s:%d/metrics", self.config.metrics.host,
                 server.server_port)
        self.metrics.refresh_posture(self.engine, self.config.freshness_window)
        if self.config.api.enabled:
            try:
                self.api = self._start_api()
            except Exception:
                server.shutdown()
                raise
            every = int(self.config.api.seal_every.total_seconds())
            self.scheduler.add_job(self.seal_access_log, IntervalTrigger(seconds=every,
                                                                         timezone=UTC),
                                   id="seal access log", name="seal the API access log")
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop.set())
        for source in self.config.sources:
            self._schedule(source, collect_at_start)
        if self.config.people is not None:
            self.scheduler.add_job(self.join_people, schedules.trigger(self.config.people.schedule),
                                   id="annexa-people", name="join people")
        if self.verify_every:
            self.scheduler.add_job(
                self.verify_ledger, IntervalTrigger(seconds=int(self.verify_every.total_seconds()),
                                                    timezone=UTC),
                id="verify ledger", name="verify ledger", next_run_time=datetime.now(UTC))
        self.scheduler.start()
        try:
            while not self.stop.wait(1.0):
                pass
        finally:
            log.info("stopping: waiting for running collections to seal")
            if self.api:
                self.api.stop()
            self.scheduler.shutdown(wait=True)
            if self.api:
                self.seal_access_log()  # the last requests, so none is left out of the ledger
            server.shutdown()
            thread.join(timeout=5)
            log.info("stopped")
