"""One collection of one source: connector -> redact -> canonicalise -> hash -> store ->
check -> seal. The connector never sees storage; checks never see the connector."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine

from checks.registry import REGISTRY
from collector.canonical import redacted_canonical, sha256_hex
from collector.chain import RUNS, seal
from collector.clock import require_clock_not_behind
from collector.config import PROCESS_WRITER_FROM, SourceConfig
from collector.db import connection_lost, describe, once_reachable
from collector.evaluate import Evaluator, Outcome
from collector.ledger import Signer
from collector.locks import source_lock
from collector.model import CollectionError, Resource, Scope
from collector.progress import ApiObserver, Progress, observing, service_of
from collector.schema import now
from collector.store import PendingResource, RunWriter, WriteStats, pending_result
from collector.writer_process import RemoteWriter, shareable_url
from collector.writer_switch import SwitchingWriter
from connectors import connector

log = logging.getLogger("annexa.pipeline")

WriterMode = Literal["auto", "inline", "process"]
Writer = RunWriter | RemoteWriter | SwitchingWriter


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


# The message of a run that recover_abandoned() sealed: its collection is redone, not answered.
ABANDONED = "the collecting process stopped before sealing"


def recover_abandoned(engine: Engine, source: str, signer: Signer) -> list[int]:
    """Seal runs left unsealed by a killed process, as `interrupted`, so the chain stays whole.
    Only the holder of the source's lock may call it: any unsealed run is then abandoned."""
    with engine.begin() as conn:
        ids = list(conn.scalars(sa.select(RUNS.c.id).where(
            RUNS.c.source == source, RUNS.c.seq.is_(None)).order_by(RUNS.c.id)))
        for run_id in ids:
            conn.execute(RUNS.update().where(RUNS.c.id == run_id).values(
                status="interrupted", message=ABANDONED))
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
    writer: WriterMode = "auto",
    wait: float = 0.0,
    retire: str | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Collect `source` now and seal the run. `items` replaces the connector's stream (the
    pipeline benchmark feeds synthetic resources through every later stage this way).
    `retire` (why) seals a run of status `retired` that sees nothing, instead: it ends every
    resource and result of a source that is no longer collected, and keeps its history.
    `writer` says where evidence is written: in this process, in a writer process, or
    ("auto") in a writer process once the source's last run held PROCESS_WRITER_FROM resources.
    `progress` counts resources, API calls and errors as they come, per service.
    Raises SourceBusy, having stored nothing, when another process still collects the source
    after `wait` seconds, and ClockBehind when the clock reads before the ledger's newest
    seal."""
    require_clock_not_behind(engine)
    with source_lock(engine, source.name, wait):
        # What was alive before the run (modules, checks, configuration) stays alive through
        # it: kept out of the cycle collector, which would otherwise walk all of it at each
        # full collection that a run's batches set off (10k resources: 57 of 917 ms).
        gc.freeze()
        try:
            return _collect(engine, source, signer, stop,
                            observing(api_observer, progress, source.name),
                            () if retire else items, writer, retire, progress)
        finally:
            gc.unfreeze()


def _collect(engine: Engine, source: SourceConfig, signer: Signer,
             stop: threading.Event | None, api_observer: ApiObserver | None,
             items: Iterable[Scope | Resource | CollectionError] | None,
             writer: WriterMode, retire: str | None = None,
             progress: Progress | None = None) -> RunOutcome:
    recover_abandoned(engine, source.name, signer)
    started = time.monotonic()
    url = shareable_url(engine)
    mode = _writer_mode(engine, url, source.name, writer)
    with engine.begin() as conn:
        run_id = conn.execute(RUNS.insert().values(
            source=source.name, kind=source.kind, started_at=now(), status="running",
            resources=0, results=0, errors=0)).inserted_primary_key[0]
    status, message = "complete", None
    extra: dict[str, Any] = {"writer": mode}
    with _open_writer(engine, url, run_id, source.name, mode) as out:
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
                    _resource(item, out, evaluator, digests)
                    if progress is not None:
                        progress.count(source.name, service_of(item.kind), resources=1)
                elif isinstance(item, CollectionError):
                    out.add_error(item)
                    _results(evaluator.error(item), out, digests)
                    if progress is not None:
                        progress.count(source.name, item.service, errors=1)
                elif isinstance(item, Scope):
                    evaluator.scope(item)
            if status == "complete":
                _results(evaluator.finish(), out, digests)
                out.finish(set(REGISTRY))
                if out.errors:
                    status = "partial"
                if retire:
                    status, message = "retired", retire
            else:
                out.finish(None)
        except Exception as exc:  # the run is recorded as failed, never lost
            if connection_lost(exc):  # not our code's fault: the words say it all
                log.error("collection of %s failed: the database connection was lost (%s)",
                          source.name, describe(exc))
            else:
                log.exception("collection of %s failed", source.name)
            status, message = "failed", describe(exc)
            out.salvage()
    if isinstance(out, SwitchingWriter):
        extra["writer"] = out.mode
    remote = out.remote if isinstance(out, SwitchingWriter) else out
    if isinstance(remote, RemoteWriter):
        extra["writer_peak_rss_kb"] = remote.peak_rss_kb
        extra["collector_peak_rss_kb_with_writer"] = remote.own_peak_rss_kb
    def record() -> None:
        with engine.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.id == run_id, RUNS.c.seq.is_(None)).values(
                status=status, message=message, finished_at=now(),
                resources=out.stats.resources, results=out.stats.results,
                errors=len(out.errors)))

    # A database restart in the middle of the run fails it (its connections are gone, and
    # what they had not committed with them); its end is still recorded and sealed once the
    # server is back, instead of being left to the next collection.
    once_reachable(record)
    sealed = once_reachable(lambda: seal(engine, run_id, signer))
    if progress is not None:
        progress.done(source.name, status)
    return RunOutcome(run_id, source.name, status, time.monotonic() - started, message,
                      out.errors, out.stats, sealed.seq, sealed.chain_hash, extra)


def _writer_mode(engine: Engine, url: str | None, source: str, requested: WriterMode) -> str:
    if url is None or requested == "inline":
        return "inline"
    if requested == "process":
        return "process"
    with engine.connect() as conn:
        last = conn.scalar(sa.select(RUNS.c.resources).where(
            RUNS.c.source == source, RUNS.c.seq.is_not(None)).order_by(RUNS.c.id.desc()).limit(1))
    if last is None:
        return "first"  # its size is unknown: see collector/writer_switch.py
    return "process" if last >= PROCESS_WRITER_FROM else "inline"


@contextmanager
def _open_writer(engine: Engine, url: str | None, run_id: int, source: str,
                 mode: str) -> Iterator[Writer]:
    if mode == "inline":
        with engine.connect() as conn:
            yield RunWriter(conn, run_id, source)
        return
    assert url is not None  # _writer_mode() chose inline for a database only this process sees
    writer = (SwitchingWriter(engine, url, run_id, source) if mode == "first"
              else RemoteWriter(url, run_id, source))
    try:
        yield writer
    finally:
        writer.close()


# Column sizes of resource_versions (PostgreSQL enforces them; SQLite does not), and for keys
# what a PostgreSQL index entry holds (about 2,700 bytes), with room for the source beside it.
_FIELD_LIMITS = {"key": 2048, "kind": 200, "scope": 200, "region": 64}


def unstorable(item: Resource) -> str | None:
    """Why `item` cannot be stored as it is, or None. Whoever controls the audited account
    writes its names and configuration: one hostile resource must fail alone."""
    for name in ("key", "kind", "scope", "region"):
        problem = _field_problem(name, getattr(item, name))
        if problem is not None:
            return problem
    return None


def _field_problem(name: str, value: object) -> str | None:
    if not isinstance(value, str) or not value or "\x00" in value:
        return f"its {name} is empty, not text or holds a NUL character"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"its {name} is not valid Unicode text"
    if size > _FIELD_LIMITS[name]:
        return f"its {name} is longer than {_FIELD_LIMITS[name]} bytes"
    return None


def _refuse(item: Resource, why: str, writer: Writer, evaluator: Evaluator,
            digests: dict[str, str]) -> None:
    """Record `item` as a resource that could not be stored: an error of the run naming it,
    and `error` for each of its checks; its earlier version, if any, stays in force."""
    def text(name: str) -> str:
        value = getattr(item, name)
        return value if _field_problem(name, value) is None else ascii(value)[:_FIELD_LIMITS[
            name] // 2]

    key = text("key")
    err = CollectionError(scope=text("scope"), region=text("region"), service="annexa",
                          kinds=(text("kind"),), message=f"{key[:300]}: not stored: {why}",
                          key=key)
    log.warning("resource %s", err.message)
    writer.add_error(err)
    _results(evaluator.error(err), writer, digests)


def _resource(item: Resource, writer: Writer, evaluator: Evaluator,
              digests: dict[str, str]) -> None:
    why = unstorable(item)
    if why is not None:
        _refuse(item, why, writer, evaluator, digests)
        return
    try:
        data, body = redacted_canonical(item.data)
    except RecursionError:
        _refuse(item, "its data is nested too deeply to canonicalise", writer, evaluator,
                digests)
        return
    except (TypeError, ValueError) as exc:
        _refuse(item, f"its data is not JSON: {exc}", writer, evaluator, digests)
        return
    digest = sha256_hex(body)
    writer.add_resource(PendingResource(item.kind, item.key, item.scope, item.region, digest,
                                        body))
    digests[item.key] = digest
    judged = item if data is item.data else Resource(item.kind, item.key, item.scope,
                                                     item.region, data)
    _results(evaluator.resource(judged), writer, digests)
    if not evaluator.buffers(item.kind):
        digests.pop(item.key, None)


def _results(outcomes: Any, writer: Writer, digests: dict[str, str]) -> None:
    for out in outcomes:
        out: Outcome
        writer.add_result(pending_result(
            out.check.id, out.subject, out.kind, out.region, out.verdict.status,
            out.verdict.reason, [digests[k] for k in out.evidence if k in digests],
            out.per_resource))
