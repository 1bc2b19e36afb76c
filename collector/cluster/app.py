"""The Celery application and its one task: collect one unit (a source, or an organisation's
account) and seal its run.

Delivery is at least once, and made harmless:
- a task is acknowledged only after its run is sealed (acks_late), and a worker process that
  dies mid-run gives its task back (reject_on_worker_lost): the next worker to take the unit's
  lock seals the dead run as `interrupted` (recover_abandoned) and collects again;
- a task delivered again after its run was sealed (a broker that restarted before the
  acknowledgement reached it) finds that seal and does nothing: no second run, no duplicate;
- evidence is content-addressed and a unit's lock admits one run at a time, so even a second
  run of a unit adds no duplicate blob or version.
Each worker process takes one task at a time (prefetch 1): a long account never holds back
short ones queued behind it on the same process."""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from celery import Celery
from sqlalchemy.exc import DBAPIError

from collector.clock import ClockBehind
from collector.config import Config, SourceConfig
from collector.locks import SourceBusy

log = logging.getLogger("annexa.cluster")

TASK = "annexa.collect"
QUEUE = "annexa"
# Beyond the time limit, so that Redis never hands a running task to a second worker.
_VISIBILITY_MARGIN = 1.25
_RETRY_BACKOFF = 30  # seconds, doubled at each retry


def make_app(cfg: Config) -> Celery:
    assert cfg.queue is not None, "make_app without queue:"
    queue = cfg.queue
    app = Celery("annexa", broker=broker_url(queue.broker), set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_time_limit=queue.time_limit_seconds,
        worker_prefetch_multiplier=1,
        # A pool process keeps about 12 MB of each unit it ran (bench/org_scale.py: 749 MB
        # after 51 accounts in one process): replaced after a few units, it gives it back.
        worker_max_tasks_per_child=queue.tasks_per_process,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": int(queue.time_limit_seconds * _VISIBILITY_MARGIN)},
        task_serializer="json",
        accept_content=["json"],
    )
    app.task(name=TASK, bind=True, max_retries=queue.retries)(_collect_task)
    app.conf.annexa = cfg
    return app


def broker_url(url: str) -> str:
    """The broker URL with $ANNEXA_BROKER_PASSWORD as its password, when that is set: the
    configuration file holds no secret."""
    password = os.environ.get("ANNEXA_BROKER_PASSWORD")
    if not password:
        return url
    parts = urlsplit(url)
    user = f"{quote(parts.username or '', safe='')}:" if parts.username else ":"
    host = parts.hostname or ""
    netloc = f"{user}{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def message(unit: SourceConfig) -> dict[str, Any]:
    """A unit as a task carries it: its name and its settings (never a credential: those come
    from each worker's own environment)."""
    return {"name": unit.name, "kind": unit.kind, "schedule": unit.schedule,
            "options": unit.options}


_PROCESS: dict[int, tuple[Any, Any]] = {}


def _engine_and_signer(cfg: Config) -> tuple[Any, Any]:
    """Per process: a pool-worker process made by fork must not share its parent's
    connections."""
    pid = os.getpid()
    if pid not in _PROCESS:
        from collector.db import engine_for
        from collector.ledger import load_signer

        _PROCESS[pid] = (engine_for(cfg.database),
                        load_signer(cfg.signing_key, cfg.retired_signing_keys))
    return _PROCESS[pid]


def _collect_task(task: Any, unit: dict[str, Any], after: int) -> str:
    from collector.cluster.dispatch import sealed_after
    from collector.pipeline import collect_source

    cfg: Config = task.app.conf.annexa
    engine, signer = _engine_and_signer(cfg)
    source = SourceConfig.model_construct(name=unit["name"], kind=unit["kind"],
                                          schedule=unit["schedule"], **unit["options"])
    try:
        with engine.connect() as conn:
            if sealed_after(conn, source.name, after) is not None:
                return "already sealed"
        out = collect_source(engine, source, signer, writer=cfg.writer)
    except SourceBusy:
        # Another worker collects the unit now: its seal answers whoever waits.
        return "busy"
    except ClockBehind as exc:  # nothing to retry until the clock is right
        log.error("%s: not collected: %s", source.name, exc)
        return "clock behind"
    except DBAPIError as exc:  # the database went away: the run is redone once it is back
        log.warning("%s: database unreachable, retrying: %s", source.name, exc)
        raise task.retry(exc=exc, countdown=_RETRY_BACKOFF * 2 ** task.request.retries) from exc
    log.info("run %s of %s: %s (%d resources, %.1fs)", out.run_id, out.source, out.status,
             out.stats.resources, out.seconds)
    return out.status


def run_worker(cfg: Config, concurrency: int, metrics_port: int | None) -> int:
    """`annexa worker`: serve the queue until stopped."""
    if metrics_port is not None:
        from prometheus_client import start_http_server

        # This process's own metrics (CPU, memory, open files); posture and unit health come
        # from the store, through `annexa run`'s /metrics.
        start_http_server(metrics_port, cfg.metrics.host)
    app = make_app(cfg)
    app.worker_main(["worker", f"--concurrency={concurrency}", "--loglevel=INFO",
                     f"--queues={QUEUE}", "--without-gossip", "--without-mingle"])
    return 0
