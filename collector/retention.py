"""Retention: `annexa prune` drops the bodies of evidence blobs that no version valid in a
source's retained period needs, and keeps their digests, so the chain still verifies.

A body may go only when every version that holds its digest, in every source, stopped being
valid before its own source's cutoff; a source without `retention` keeps everything, and so do
the reserved sources (SoA, attestations, access log, people). A result's evidence is the
versions it was judged on, and any change of those changes the result, so a result is never
valid longer than the versions it cites: versions alone decide.

The pruning is itself evidence: the digests whose bodies go are first sealed into a run of the
reserved source `annexa-retention`, then dropped. `verify` accepts a missing body only when a
sealed prune record lists it; a crash between the two leaves bodies that are listed but present,
which the next prune drops."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from collector.chain import RUNS
from collector.config import Config, SourceConfig, parse_duration
from collector.ledger import Signer
from collector.model import Resource, Scope
from collector.pipeline import RunOutcome, collect_source
from collector.schema import now as utc_now
from collector.store import BLOBS, VERSIONS, decompress

SOURCE = "annexa-retention"
KIND = "retention.prune"
SCOPE = Scope(provider="retention", id=SOURCE, key="annexa:retention")
# Digests per prune record: a record stays a few hundred kilobytes however much goes.
RECORD_DIGESTS = 5_000
_CHUNK = 500


@dataclass
class SourcePrune:
    source: str
    retention: str
    cutoff: datetime
    digests: list[str] = field(default_factory=list)
    bytes: int = 0  # compressed bytes of the bodies dropped


@dataclass
class PruneOutcome:
    sources: list[SourcePrune]
    run: RunOutcome | None  # the sealed prune run; None when nothing was due or in a dry run
    dropped: int = 0  # bodies dropped now (a digest listed earlier and still present included)


def cutoffs(cfg: Config, at: datetime) -> dict[str, tuple[str, datetime]]:
    """source -> (its retention, the instant before which its superseded evidence may go)."""
    return {s.name: (s.retention, at - parse_duration(s.retention))
            for s in cfg.sources if s.retention}


def _ended_before(conn: Connection, source: str, cutoff: datetime) -> Iterator[str]:
    """Digests, still with a body, of versions of `source` that stopped being valid at a run
    that finished before `cutoff`."""
    ended = RUNS.alias("ended")
    rows = conn.execute(
        sa.select(VERSIONS.c.digest).distinct()
        .join(ended, ended.c.id == VERSIONS.c.valid_to_run)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == source, ended.c.finished_at < cutoff,
               BLOBS.c.body.is_not(None))
        .order_by(VERSIONS.c.digest).execution_options(yield_per=5000))
    for (digest,) in rows:
        yield digest


def _still_needed(conn: Connection, digests: list[str],
                  cut: dict[str, tuple[str, datetime]]) -> set[str]:
    """Those of `digests` that some version still needs under its own source's rule."""
    ended = RUNS.alias("ended")
    rows = conn.execute(
        sa.select(VERSIONS.c.digest, VERSIONS.c.source, ended.c.finished_at)
        .outerjoin(ended, ended.c.id == VERSIONS.c.valid_to_run)
        .where(VERSIONS.c.digest.in_(digests)))
    needed = set()
    for digest, source, finished in rows:
        rule = cut.get(source)
        if rule is None or finished is None or finished >= rule[1]:
            needed.add(digest)
    return needed


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def plan(engine: Engine, cfg: Config, at: datetime) -> list[SourcePrune]:
    cut = cutoffs(cfg, at)
    out = []
    with engine.connect() as conn:
        for source, (retention, cutoff) in cut.items():
            due = SourcePrune(source, retention, cutoff)
            for chunk in _chunks(_ended_before(conn, source, cutoff), _CHUNK):
                needed = _still_needed(conn, chunk, cut)
                due.digests.extend(d for d in chunk if d not in needed)
            for chunk in _chunks(due.digests, _CHUNK):
                due.bytes += conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(sa.func.length(BLOBS.c.body)), 0))
                    .where(BLOBS.c.digest.in_(chunk))).scalar_one()
            out.append(due)
    return out


def _records(due: list[SourcePrune], at: datetime) -> Iterator[Scope | Resource]:
    yield SCOPE
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    for prune in due:
        for part, chunk in enumerate(_chunks(prune.digests, RECORD_DIGESTS)):
            yield SCOPE.resource(KIND, f"annexa:prune:{prune.source}:{stamp}:{part}", {
                "source": prune.source, "retention": prune.retention,
                "cutoff": prune.cutoff.isoformat(), "pruned_at": at.isoformat(),
                "digests": chunk})


def prune(engine: Engine, cfg: Config, signer: Signer, *, at: datetime | None = None,
          dry_run: bool = False, stop: threading.Event | None = None) -> PruneOutcome:
    """Seal what is due for pruning as of `at` (now), then drop those bodies."""
    at = at or utc_now()
    due = plan(engine, cfg, at)
    if dry_run or not any(p.digests for p in due):
        return PruneOutcome(due, None)
    derived = SourceConfig.model_construct(name=SOURCE, kind="retention", schedule="1d")
    run = collect_source(engine, derived, signer, stop=stop, items=_records(due, at),
                         writer="inline")
    if run.status != "complete":
        return PruneOutcome(due, run)
    dropped = 0
    with engine.begin() as conn:
        for prune_ in due:
            for chunk in _chunks(prune_.digests, _CHUNK):
                dropped += conn.execute(BLOBS.update().where(
                    BLOBS.c.digest.in_(chunk), BLOBS.c.body.is_not(None))
                    .values(body=None)).rowcount
    return PruneOutcome(due, run, dropped)


def sealed_prunes(conn: Connection) -> set[str]:
    """Every digest that a sealed prune record lists."""
    rows = conn.execute(
        sa.select(BLOBS.c.body).join(VERSIONS, VERSIONS.c.digest == BLOBS.c.digest)
        .join(RUNS, RUNS.c.id == VERSIONS.c.valid_from_run)
        .where(VERSIONS.c.source == SOURCE, VERSIONS.c.kind == KIND, RUNS.c.seq.is_not(None)))
    listed: set[str] = set()
    for (body,) in rows:
        if body is not None:
            listed.update(json.loads(decompress(body))["digests"])
    return listed
