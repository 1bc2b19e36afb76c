"""One collection of one source: connector -> redact -> canonicalise -> hash -> store ->
check -> seal. The connector never sees storage; checks never see the connector."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from checks.registry import REGISTRY
from collector.canonical import redacted_canonical, sha256_hex
from collector.chain import RUNS, seal
from collector.config import SourceConfig
from collector.evaluate import Evaluator, Outcome
from collector.ledger import Signer
from collector.model import CollectionError, Resource, Scope
from collector.schema import now
from collector.store import PendingResource, PendingResult, RunWriter, WriteStats
from connectors import connector

log = logging.getLogger("annexa.pipeline")

ApiObserver = Callable[[str, str, int, int], None]


@dataclass
class RunOutcome:
    run_id: int
    source: str
    status: str  # complete, partial, failed, interrupted
    seconds: float
    message: str | None
    errors: list[CollectionError]
    stats: WriteStats
    seq: int | None = None
    chain_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def recover_abandoned(engine: Engine, source: str, signer: Signer) -> list[int]:
    """Seal runs left unsealed by a killed process, as `interrupted`, so the chain stays whole."""
    with engine.begin() as conn:
        ids = list(conn.scalars(sa.select(RUNS.c.id).where(
            RUNS.c.source == source, RUNS.c.seq.is_(None)).order_by(RUNS.c.id)))
        for run_id in ids:
            conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(
                status="interrupted", message="the collecting process stopped before sealing"))
    for run_id in ids:
        seal(engine, run_id, signer)
    return ids


def collect_source(
    engine: Engine,
    source: SourceConfig,
    signer: Signer,
    *,
    stop: threading.Event | None = None,
    api_observer: ApiObserver | None = None,
    items: Iterable[Scope | Resource | CollectionError] | None = None,
) -> RunOutcome:
    """Collect `source` now and seal the run. `items` replaces the connector's stream (the
    pipeline benchmark feeds synthetic resources through every later stage this way)."""
    recover_abandoned(engine, source.name, signer)
    started = time.monotonic()
    with engine.begin() as conn:
        run_id = conn.execute(RUNS.insert().values(
            source=source.name, kind=source.kind, started_at=now(), status="running",
            resources=0, results=0, errors=0)).inserted_primary_key[0]
    status, message = "complete", None
    with engine.connect() as conn:
        writer = RunWriter(conn, run_id, source.name)
        evaluator = Evaluator()
        digests: dict[str, str] = {}
        try:
            stream = items if items is not None else connector(source.kind).collect(
                source.settings(), api_observer)
            for item in stream:
                if stop is not None and stop.is_set():
                    status, message = "interrupted", "stopped by signal before the end of the run"
                    break
                if isinstance(item, Resource):
                    _resource(item, writer, evaluator, digests)
                elif isinstance(item, CollectionError):
                    writer.add_error(item)
                    _results(evaluator.error(item), writer, digests)
                elif isinstance(item, Scope):
                    evaluator.scope(item)
            if status == "complete":
                _results(evaluator.finish(), writer, digests)
                writer.close_unseen(set(REGISTRY))
                if writer.errors:
                    status = "partial"
            else:
                writer.flush()
        except Exception as exc:  # the run is recorded as failed, never lost
            log.exception("collection of %s failed", source.name)
            conn.rollback()
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            try:
                writer.flush()
            except Exception:
                conn.rollback()
                log.exception("could not store the last batch of %s", source.name)
        conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(
            status=status, message=message, finished_at=now(), resources=writer.stats.resources,
            results=writer.stats.results, errors=len(writer.errors)))
        conn.commit()
    sealed = seal(engine, run_id, signer)
    return RunOutcome(run_id, source.name, status, time.monotonic() - started, message,
                      writer.errors, writer.stats, sealed.seq, sealed.chain_hash)


def _resource(item: Resource, writer: RunWriter, evaluator: Evaluator,
              digests: dict[str, str]) -> None:
    data, body = redacted_canonical(item.data)
    digest = sha256_hex(body)
    writer.add_resource(PendingResource(item.kind, item.key, item.scope, item.region, digest,
                                        body))
    digests[item.key] = digest
    _results(evaluator.resource(
        Resource(item.kind, item.key, item.scope, item.region, data)), writer, digests)
    if not evaluator.buffers(item.kind):
        digests.pop(item.key, None)


def _results(outcomes: Any, writer: RunWriter, digests: dict[str, str]) -> None:
    for out in outcomes:
        out: Outcome
        writer.add_result(PendingResult(
            out.check.id, out.subject, out.kind, out.region, out.verdict.status,
            out.verdict.reason, [digests[k] for k in out.evidence if k in digests],
            out.per_resource))
