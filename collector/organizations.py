"""Sources split into units of work: an AWS organisation's accounts, an azure source's
management groups, a gcp source's folders.

Naming: each unit is `<source>/<id>` (`aws-org/210987654321`, `azure-prod/landing-zones`,
`gcp-prod/456`): its own runs, lock, chain entries, health and metrics, as if it were a source
of its own. The source itself keeps its name: one run per collection, after its units', holding
what the source's own listing found (an organisation's configuration) and, per unit, what the
store knows of its collection (kind `aws.organizations.member`,
`azure.management_groups.member`, `gcp.folders.member`), which the source's checks judge.
Configured source names cannot hold `/`, so a unit never takes a source's name.

A unit that stops being collected (its account left the organisation or was suspended, or the
configuration no longer names it) gets one last run of status `retired` that ends its
resources and results: it drops out of the current posture, and its history stays."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from collector.chain import RUNS
from collector.config import SourceConfig
from collector.ledger import Signer
from collector.locks import NotStarted, source_lock
from collector.metrics import schedule_interval
from collector.model import CollectionError, Resource, Scope
from collector.pipeline import RunOutcome, WriterMode, collect_source
from collector.progress import ApiObserver, Progress, observing
from collector.schema import now
from collector.store import BLOBS, VERSIONS, decompress

log = logging.getLogger("annexa.organizations")

UNIT_SEPARATOR = "/"
# The kinds of an AWS member account's own evidence that the organisation's checks judge.
MEMBER_EVIDENCE = ("aws.guardduty.region", "aws.config.region")
# The option that splits a source of each kind, and what its units are.
SPLIT_BY = {"aws": "organization", "azure": "management_groups", "gcp": "folders"}

# Runs the units of one collection and returns their outcomes: here one after another; the
# cluster enqueues them and waits for their seals.
UnitRunner = Callable[[list[SourceConfig]], list[RunOutcome]]


@dataclass
class Split:
    """One collection of a split source: the units it collects and what its own run holds.
    `listed` are the ids given a record (an organisation's active accounts, collected or
    not); `left_out` says why a listed id is not collected; `gone`, why a unit neither
    collected nor listed is retired."""

    scope: Scope
    member_kind: str
    id_field: str
    noun: str
    units: dict[str, SourceConfig]
    listed: list[str]
    items: list[Resource | CollectionError] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    gone: str = "it is no longer configured"
    evidence: tuple[str, ...] = ()


def is_split(source: SourceConfig) -> bool:
    option = SPLIT_BY.get(source.kind)
    return option is not None and bool(source.options.get(option))


def unit_name(source: str, unit: str) -> str:
    return f"{source}{UNIT_SEPARATOR}{unit}"


def _unit(source: SourceConfig, unit: str, options: dict[str, Any]) -> SourceConfig:
    return SourceConfig.model_construct(name=unit_name(source.name, unit), kind=source.kind,
                                        schedule=source.schedule, **options)


def plan(source: SourceConfig, api_observer: ApiObserver | None = None) -> Split:
    """What this collection of a split source collects. Raises what the listing raises."""
    settings: Any = source.settings()
    if source.kind == "aws":
        from connectors.aws.organization import list_organization, member_settings

        listing = list_organization(settings, api_observer)
        units = {}
        for account in listing.members:
            member = member_settings(settings, listing.partition, account)
            units[account] = _unit(source, account, member.model_dump(
                exclude_none=True, exclude_defaults=True))
        return Split(listing.scope, "aws.organizations.member", "account_id", "account",
                     units, listing.active, listing.items, listing.names, listing.left_out,
                     "it is no longer in the organisation", MEMBER_EVIDENCE)
    # A unit takes the source's options as configured, with the one group or folder it reads.
    if source.kind == "azure":
        groups = settings.management_groups
        return Split(Scope(provider="azure-management-groups", id=settings.tenant_id,
                           key=f"/tenants/{settings.tenant_id}"),
                     "azure.management_groups.member", "management_group", "management group",
                     {g: _unit(source, g, {**source.options, "unit": g}) for g in groups},
                     list(groups))
    folders = settings.folders
    key = f"annexa:source:{source.name}"
    return Split(Scope(provider="gcp-folders", id=key, key=key), "gcp.folders.member",
                 "folder", "folder",
                 {f: _unit(source, f, {**source.options, "unit": f}) for f in folders},
                 list(folders))


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
            except NotStarted as exc:
                log.warning("%s: skipped this collection", exc)
        return outcomes
    return run


def collect(engine: Engine, source: SourceConfig, signer: Signer, *,
            stop: threading.Event | None = None, api_observer: ApiObserver | None = None,
            writer: WriterMode = "auto", wait: float = 0.0,
            run_units: UnitRunner | None = None,
            progress: Progress | None = None) -> list[RunOutcome]:
    """Collect a source now: one run, or a split source's runs. Units run in this process,
    or through `run_units` (the cluster's queue). Raises SourceBusy, having stored nothing,
    when another process collects it here."""
    if not is_split(source):
        # Units left from when the source was split are retired first: nothing collects them.
        outcomes = retire_left(engine, source, signer, set(), {},
                               "the source is no longer split into units", "unit")
        if run_units is not None:
            return outcomes + run_units([source])
        return [*outcomes, collect_source(engine, source, signer, stop=stop,
                                          api_observer=api_observer, writer=writer,
                                          wait=wait, progress=progress)]
    runner = run_units or in_turn(engine, signer, stop=stop, api_observer=api_observer,
                                  writer=writer, progress=progress)
    return collect_split(engine, source, signer, runner, api_observer=api_observer,
                         wait=wait, progress=progress)


def collect_split(engine: Engine, source: SourceConfig, signer: Signer,
                  run_units: UnitRunner, *, api_observer: ApiObserver | None = None,
                  wait: float = 0.0, progress: Progress | None = None) -> list[RunOutcome]:
    """Plan the source's units (an organisation is listed), collect them with `run_units`,
    retire the units no longer collected, then seal the source's own run. Outcomes in that
    order; a listing that fails is the source's failed run alone (no unit is touched). One
    collection of a split source at a time: the others raise SourceBusy."""
    with source_lock(engine, source.name + UNIT_SEPARATOR, wait):
        return _collect_split(engine, source, signer, run_units,
                              observing(api_observer, progress, source.name), progress)


def _collect_split(engine: Engine, source: SourceConfig, signer: Signer,
                   run_units: UnitRunner, api_observer: ApiObserver | None,
                   progress: Progress | None) -> list[RunOutcome]:
    try:
        split = plan(source, api_observer)
    except Exception as exc:  # the failure is the source's own run, recorded and sealed
        return [collect_source(engine, source, signer, items=_raising(exc))]
    outcomes = run_units(list(split.units.values()))
    outcomes += retire_left(engine, source, signer,
                            {unit.name for unit in split.units.values()}, split.left_out,
                            split.gone, split.noun)
    window = schedule_interval(source.schedule).total_seconds()
    items = _split_items(engine, source, split, window)
    outcomes.append(collect_source(engine, source, signer, items=items, progress=progress))
    return outcomes


def retire_left(engine: Engine, source: SourceConfig, signer: Signer, collected: set[str],
                left_out: dict[str, str], gone: str, noun: str) -> list[RunOutcome]:
    """Seal a `retired` run for each unit of the source that is not `collected` now, saying
    why: its entry in `left_out`, else `gone`."""
    with engine.connect() as conn:
        known = units_of(conn, source.name)
    outcomes = []
    for name, status in sorted(known.items()):
        if name in collected or status == "retired":
            continue
        unit = name.split(UNIT_SEPARATOR, 1)[1]
        why = left_out.get(unit, gone)
        retiring = SourceConfig.model_construct(name=name, kind=source.kind,
                                                schedule=source.schedule)
        try:
            outcomes.append(collect_source(engine, retiring, signer, retire=(
                f"{noun} {unit} is no longer collected: {why}")))
        except NotStarted as exc:
            log.warning("%s: not retired this time", exc)
    return outcomes


def _raising(exc: Exception) -> Iterator[Scope | Resource | CollectionError]:
    raise exc
    yield  # a generator: the pipeline records the failure as the run's own


def _split_items(engine: Engine, source: SourceConfig, split: Split,
                 window_seconds: float) -> Iterator[Scope | Resource | CollectionError]:
    yield split.scope
    yield from split.items
    at = now()
    with engine.connect() as conn:
        for unit in split.listed:
            name = unit_name(source.name, unit)
            collected = unit in split.units
            data: dict[str, Any] = {
                split.id_field: unit, "name": split.names.get(unit, ""), "unit": name,
                "collected": collected, "left_out": split.left_out.get(unit),
                "window_seconds": window_seconds, **_collection(conn, name, at)}
            if collected:
                data["scopes"] = _scopes(conn, name)
                if split.evidence:
                    data["evidence"] = _evidence(conn, name, split.evidence)
            yield split.scope.resource(split.member_kind, f"annexa:unit:{name}", data)


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


def _scopes(conn: Connection, unit: str) -> list[str]:
    """The scopes (accounts, subscriptions, projects) of the unit's current evidence."""
    return list(conn.scalars(sa.select(VERSIONS.c.scope).distinct().where(
        VERSIONS.c.source == unit, VERSIONS.c.valid_to_run.is_(None))
        .order_by(VERSIONS.c.scope)))


def _evidence(conn: Connection, unit: str, kinds: tuple[str, ...]
              ) -> dict[str, list[dict[str, Any]]]:
    """The unit's current resources of `kinds`, by kind."""
    rows = conn.execute(
        sa.select(VERSIONS.c.kind, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == unit, VERSIONS.c.kind.in_(kinds),
               VERSIONS.c.valid_to_run.is_(None))
        .order_by(VERSIONS.c.kind, VERSIONS.c.key))
    out: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for kind, body in rows:
        if body is not None:
            out[kind].append(json.loads(decompress(body)))
    return out
