"""What the control and resource pages show over time: a control's status at points of the
window, and a resource's versions, each pretty-printed with its diff to the one before and the
results that judged it."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from collector.chain import RUNS
from collector.posture import control_states
from collector.store import BLOBS, RESULTS, VERSIONS, decompress, parse_evidence
from collector.tokens import Principal

MAX_VERSIONS = 200  # the newest ones; a resource that changed more is shown in part


def control_timeline(conn: Connection, who: Principal, control_id: str, at: datetime,
                     freshness: timedelta, points: int) -> list[tuple[datetime, str]]:
    """The control's status at `points` instants evenly spread from the window's start (or the
    first sealed run) to `at`."""
    start = who.window_start or conn.scalar(
        sa.select(sa.func.min(RUNS.c.finished_at)).where(RUNS.c.seq.is_not(None)))
    if start is None or start >= at:
        instants = [at]
    else:
        step = (at - start) / (points - 1)
        instants = [start + step * i for i in range(points - 1)] + [at]
    return [(t, control_states(conn, t, freshness, only=[control_id], failures=False)[0].status)
            for t in instants]


@dataclass
class Version:
    id: int
    kind: str
    digest: str
    valid_from_run: int
    valid_to_run: int | None
    began: datetime
    ended: datetime | None
    current: bool  # the version that held at the page's instant
    text: str | None  # pretty-printed canonical JSON; None if pruned by retention
    diff: list[tuple[str, str]] = field(default_factory=list)  # (kind, line)
    results: list[dict[str, Any]] = field(default_factory=list)


def versions(conn: Connection, who: Principal, source: str, key: str,
             at: datetime) -> list[Version]:
    """The versions of a resource that began by `at` (and, for a windowed token, held at some
    instant of the window), oldest first."""
    began, ended = RUNS.alias("began"), RUNS.alias("ended")
    query = (sa.select(VERSIONS.c.id, VERSIONS.c.kind, VERSIONS.c.digest,
                       VERSIONS.c.valid_from_run, VERSIONS.c.valid_to_run,
                       began.c.finished_at.label("began"), ended.c.finished_at.label("ended"),
                       BLOBS.c.body)
             .join(began, began.c.id == VERSIONS.c.valid_from_run)
             .outerjoin(ended, ended.c.id == VERSIONS.c.valid_to_run)
             .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
             .where(VERSIONS.c.source == source, VERSIONS.c.key == key,
                    began.c.finished_at <= at)
             .order_by(VERSIONS.c.valid_from_run.desc()).limit(MAX_VERSIONS))
    if who.window_start is not None:
        query = query.where(sa.or_(VERSIONS.c.valid_to_run.is_(None),
                                   ended.c.finished_at > who.window_start))
    rows = list(reversed(conn.execute(query).all()))
    judged = _results(conn, source, key)
    out: list[Version] = []
    previous: list[str] = []
    for row in rows:
        text = None if row.body is None else json.dumps(
            json.loads(decompress(row.body)), indent=2, sort_keys=True)
        lines = text.splitlines() if text is not None else []
        version = Version(row.id, row.kind, row.digest, row.valid_from_run, row.valid_to_run,
                          row.began, row.ended, row.ended is None or row.ended > at, text,
                          results=judged.get(row.digest, []))
        if out and text is not None:
            version.diff = [(_line_kind(line), line) for line in difflib.unified_diff(
                previous, lines, "previous version", "this version", lineterm="", n=2)]
        previous = lines
        out.append(version)
    return out


def _line_kind(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    return {"+": "added", "-": "removed", "@": "hunk"}.get(line[:1], "same")


def _results(conn: Connection, source: str, key: str) -> dict[str, list[dict[str, Any]]]:
    """The results on this resource, by the evidence digest they judged."""
    out: dict[str, list[dict[str, Any]]] = {}
    rows = conn.execute(sa.select(RESULTS.c.check_id, RESULTS.c.status, RESULTS.c.reason,
                                  RESULTS.c.evidence, RESULTS.c.valid_from_run,
                                  RESULTS.c.valid_to_run)
                        .where(RESULTS.c.source == source, RESULTS.c.subject == key)
                        .order_by(RESULTS.c.valid_from_run, RESULTS.c.check_id))
    for row in rows:
        for digest in parse_evidence(row.evidence):
            out.setdefault(digest, []).append(row._asdict())
    return out
