"""A source that covers a whole organisation, collected as units of work.

Naming: each member account is the unit `<source>/<account id>` (`aws-org/210987654321`): its
own runs, lock, chain entries, health and metrics, as if it were a source of its own. The
organisation itself is the source's own name (`aws-org`): one run per collection, after its
accounts', holding the organisation's configuration and, per active account, what the store
knows of its collection (kind `aws.organizations.member`), which the organisation's checks
judge. Configured source names cannot hold `/`, so a unit never takes a source's name.

An account that stops being collected (it left the organisation, was suspended, or the
configuration no longer includes it) gets one last run of status `retired` that ends its
resources and results: it drops out of the current posture, and its history stays."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from collector.chain import RUNS
from collector.config import SourceConfig
from collector.ledger import Signer
from collector.locks import SourceBusy, source_lock
from collector.metrics import schedule_interval
from collector.model import CollectionError, Resource, Scope
from collector.pipeline import RunOutcome, WriterMode, collect_source
from collector.progress import ApiObserver, Progress, observing
from collector.schema import now
from collector.store import BLOBS, VERSIONS, decompress
from connectors.aws.organization import Listing, list_organization, member_settings
from connectors.aws.settings import Settings

log = logging.getLogger("annexa.organizations")

UNIT_SEPARATOR = "/"
MEMBER_KIND = "aws.organizations.member"
# The kinds of a member account's own evidence that the organisation's checks judge.
MEMBER_EVIDENCE = ("aws.guardduty.region", "aws.config.region")

# Runs the units of one collection and returns their outcomes: here one after another; the
# cluster enqueues them and waits for their seals.
UnitRunner = Callable[[list[SourceConfig]], list[RunOutcome]]


def is_organization(source: SourceConfig) -> bool:
    return source.kind == "aws" and bool(source.options.get("organization"))


def unit_name(source: str, account: str) -> str:
    return f"{source}{UNIT_SEPARATOR}{account}"


def unit_config(source: SourceConfig, settings: Settings) -> SourceConfig:
    """A unit as the pipeline takes a source: its name, and the settings of its account."""
    assert settings.role_arn is not None
    account = settings.role_arn.split(":")[4]
    options = settings.model_dump(exclude_none=True, exclude_defaults=True)
    return SourceConfig.model_construct(name=unit_name(source.name, account), kind=source.kind,
                                        schedule=source.schedule, **options)


def units_of(conn: Connection, source: str) -> dict[str, str]:
    """Every unit of `source` that has a sealed run: unit name -> status of its last one."""
    newest = (sa.select(sa.func.max(RUNS.c.id)).where(
        RUNS.c.source.startswith(source + UNIT_SEPARATOR, autoescape=True),
        RUNS.c.seq.is_not(None)).group_by(RUNS.c.source))
    return dict(conn.execute(sa.select(RUNS.c.source, RUNS.c.status).where(
        RUNS.c.id.in_(newest))).all())


def in_turn(engine: Engine, signer: Signer, *, stop: threading.Event | None = None,
            api_observer: ApiObserver | None = None, writer: WriterMode = "auto",
            wait: float = 0.0, progress: Progress | None = None) -> UnitRunner:
    """Collect the units one after another in this process (without a queue)."""
    def run(units: list[SourceConfig]) -> list[RunOutcome]:
        outcomes = []
        for unit in units:
            if stop is not None and stop.is_set():
                break
            try:
                outcomes.append(collect_source(engine, unit, signer, stop=stop,
                                               api_observer=api_observer, writer=writer,
                                               wait=wait, progress=progress))
            except SourceBusy as exc:
                log.warning("%s: skipped this collection", exc)
        return outcomes
    return run


def collect(engine: Engine, source: SourceConfig, signer: Signer, *,
            stop: threading.Event | None = None, api_observer: ApiObserver | None = None,
            writer: WriterMode = "auto", wait: float = 0.0,
            run_units: UnitRunner | None = None,
            progress: Progress | None = None) -> list[RunOutcome]:
    """Collect a source now: one run, or an organisation's runs. Units run in this process,
    or through `run_units` (the cluster's queue). Raises SourceBusy, having stored nothing,
    when another process collects it here."""
    if not is_organization(source):
        if run_units is not None:
            return run_units([source])
        return [collect_source(engine, source, signer, stop=stop, api_observer=api_observer,
                               writer=writer, wait=wait, progress=progress)]
    runner = run_units or in_turn(engine, signer, stop=stop, api_observer=api_observer,
                                  writer=writer, progress=progress)
    return collect_organization(engine, source, signer, runner, api_observer=api_observer,
                                wait=wait, progress=progress)


def collect_organization(engine: Engine, source: SourceConfig, signer: Signer,
                         run_units: UnitRunner, *, api_observer: ApiObserver | None = None,
                         wait: float = 0.0, progress: Progress | None = None
                         ) -> list[RunOutcome]:
    """List the organisation, collect its accounts with `run_units`, retire the accounts no
    longer collected, then seal the organisation's own run. Outcomes in that order; a listing
    that fails is the organisation's failed run alone (no account is touched). One
    collection of an organisation at a time: the others raise SourceBusy."""
    with source_lock(engine, source.name + UNIT_SEPARATOR, wait):
        return _collect_organization(engine, source, signer, run_units,
                                     observing(api_observer, progress, source.name), progress)


def _collect_organization(engine: Engine, source: SourceConfig, signer: Signer,
                          run_units: UnitRunner, api_observer: ApiObserver | None,
                          progress: Progress | None) -> list[RunOutcome]:
    settings = source.settings()
    assert isinstance(settings, Settings) and settings.organization is not None
    try:
        listing = list_organization(settings, api_observer)
    except Exception as exc:  # the failure is the organisation's run, recorded and sealed
        return [collect_source(engine, source, signer, items=_raising(exc))]
    units = [unit_config(source, member_settings(settings, listing.partition, account))
             for account in listing.members]
    outcomes = run_units(units)
    outcomes += retire_left(engine, source, listing, signer)
    window = schedule_interval(source.schedule).total_seconds()
    items = _organization_items(engine, source, listing, window)
    outcomes.append(collect_source(engine, source, signer, items=items, progress=progress))
    return outcomes


def retire_left(engine: Engine, source: SourceConfig, listing: Listing,
                signer: Signer) -> list[RunOutcome]:
    """Seal a `retired` run for each unit whose account is no longer collected."""
    with engine.connect() as conn:
        known = units_of(conn, source.name)
    collected = {unit_name(source.name, account) for account in listing.members}
    outcomes = []
    for name, status in sorted(known.items()):
        if name in collected or status == "retired":
            continue
        account = name.rsplit(UNIT_SEPARATOR, 1)[1]
        why = listing.left_out.get(account, "it is no longer in the organisation")
        unit = SourceConfig.model_construct(name=name, kind=source.kind,
                                            schedule=source.schedule)
        try:
            outcomes.append(collect_source(engine, unit, signer, retire=(
                f"account {account} is no longer collected: {why}")))
        except SourceBusy as exc:
            log.warning("%s: not retired this time", exc)
    return outcomes


def _raising(exc: Exception) -> Iterator[Scope | Resource | CollectionError]:
    raise exc
    yield  # a generator: the pipeline records the failure as the run's own


def _organization_items(engine: Engine, source: SourceConfig, listing: Listing,
                        window_seconds: float) -> Iterator[Scope | Resource | CollectionError]:
    yield listing.scope
    yield from listing.items
    at = now()
    with engine.connect() as conn:
        for account in listing.active:
            name = unit_name(source.name, account)
            data: dict[str, Any] = {
                "account_id": account, "name": listing.names.get(account, ""), "unit": name,
                "collected": account in listing.members,
                "left_out": listing.left_out.get(account), "window_seconds": window_seconds,
                **_collection(conn, name, at)}
            if account in listing.members:
                data["evidence"] = _evidence(conn, name)
            yield listing.scope.resource(MEMBER_KIND, f"annexa:unit:{name}", data)


def _collection(conn: Connection, unit: str, at: datetime) -> dict[str, Any]:
    """The unit's last sealed run, and the last that collected (completely or in part)."""
    sealed = (sa.select(RUNS.c.id, RUNS.c.status, RUNS.c.finished_at, RUNS.c.message)
              .where(RUNS.c.source == unit, RUNS.c.seq.is_not(None))
              .order_by(RUNS.c.id.desc()).limit(1))
    last = conn.execute(sealed).first()
    good = conn.execute(sealed.where(RUNS.c.status.in_(("complete", "partial")))).first()
    return {
        "last_run": None if last is None else {
            "id": last.id, "status": last.status, "message": last.message,
            "finished_at": last.finished_at.isoformat()},
        "last_collected_at": None if good is None else good.finished_at.isoformat(),
        "age_seconds": None if good is None else round((at - good.finished_at)
                                                       .total_seconds(), 3),
    }


def _evidence(conn: Connection, unit: str) -> dict[str, list[dict[str, Any]]]:
    """The unit's current resources of MEMBER_EVIDENCE, by kind."""
    rows = conn.execute(
        sa.select(VERSIONS.c.kind, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == unit, VERSIONS.c.kind.in_(MEMBER_EVIDENCE),
               VERSIONS.c.valid_to_run.is_(None))
        .order_by(VERSIONS.c.kind, VERSIONS.c.key))
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in MEMBER_EVIDENCE}
    for kind, body in rows:
        if body is not None:
            out[kind].append(json.loads(decompress(body)))
    return out
