"""Evidence bundles: everything an auditor needs to check an observation window offline.

The window [start, end] covers the contiguous stretch of the chain from, per source, the last run
that had finished by `start` (the state at the start rests on it) to the last run finished by
`end`, plus the run just before that stretch, whose chain hash anchors its first link. Runs of
every source are included (the chain is global), even those that add nothing to the selected
controls, so that the verifier can see that none is missing.

Each resource version and check result relevant to the selected controls that is valid at some
run of the window is listed once, with its validity interval and an RFC 6962 inclusion proof
against the Merkle root of the first run of the window at which it is valid ("its run"). Every
evidence digest is shipped as a file: the canonical JSON whose SHA-256 is the digest. The
layout is documented in README.md ("Auditors") and checked by collector/bundle_verify.py.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine

from checks.catalogue import controls as catalogue
from checks.registry import Check
from collector import ledger, soa
from collector.bundle_layout import FORMAT, MANIFEST, PUBLIC_KEY, REPORT, evidence_path
from collector.canonical import sha256_hex
from collector.chain import KEYS, RUNS, run_errors
from collector.posture import control_states, valid_between
from collector.progress import Progress
from collector.report_html import RENDERER, render_report
from collector.schema import now
from collector.snapshot import DEFAULT_FRESHNESS, checks_for, require_controls
from collector.store import BLOBS, ERRORS, RESULTS, VERSIONS, decompress

RunRow = sa.Row[Any]  # a row of `runs`, as read

_LEAF = np.dtype("S32")  # leaf hashes; numpy orders them like memcmp, as the ledger sorts
_OPEN = np.iinfo(np.int64).max  # valid_to_run of an interval that is still open
_CHUNK = 500


class BundleError(ValueError):
    """The window, the key or the database cannot give a sound bundle (the message says why)."""


@dataclass(frozen=True)
class BundleSummary:
    path: str
    first_seq: int
    last_seq: int
    runs: int
    resources: int
    results: int
    evidence_files: int
    pruned: int
    key_id: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class MerkleTree:
    """An RFC 6962 tree kept level by level, so that many audit paths cost one build.
    Same shape as ledger.merkle_root() and ledger.inclusion_proof()."""

    def __init__(self, packed: bytes) -> None:
        self.levels = [packed]
        level = packed
        while len(level) > 32:
            n = len(level) // 32
            nxt = bytearray()
            for i in range(0, n - 1, 2):
                nxt += hashlib.sha256(b"\x01" + level[i * 32:(i + 2) * 32]).digest()
            if n % 2:
                nxt += level[(n - 1) * 32:]
            level = bytes(nxt)
            self.levels.append(level)

    def root(self) -> str:
        return self.levels[-1].hex() if self.levels[-1] else ledger.EMPTY_ROOT

    def path(self, index: int) -> list[str]:
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level) // 32:
                proof.append(level[sibling * 32:(sibling + 1) * 32].hex())
            index //= 2
        return proof


@dataclass
class _SourceLeaves:
    """Every row of one source valid at some run of the window, as leaves with intervals, and
    the rows the bundle shows, each waiting for its proof."""

    source: str
    run_ids: list[int]
    leaves: bytearray = field(default_factory=bytearray)
    froms: list[int] = field(default_factory=list)
    tos: list[int] = field(default_factory=list)
    shown: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, leaf: bytes, valid_from: int, valid_to: int | None) -> int:
        self.leaves += leaf
        self.froms.append(valid_from)
        self.tos.append(_OPEN if valid_to is None else valid_to)
        return len(self.froms) - 1

    def first_run(self, valid_from: int, valid_to: int | None) -> int | None:
        """The first run of the window at which an interval is valid, if any."""
        i = bisect.bisect_left(self.run_ids, valid_from)
        if i < len(self.run_ids) and (valid_to is None or self.run_ids[i] < valid_to):
            return self.run_ids[i]
        return None

    def show(self, row: int, entry: dict[str, Any], run_id: int) -> None:
        entry["proof"] = {"run": run_id}
        self.shown.append((row, entry))

    def prove(self, runs: dict[int, RunRow]) -> None:
        """Give each shown row its audit path in the tree of its run, rebuilt from the rows
        valid at that run; a tree that misses the sealed root means a broken ledger."""
        froms, tos = np.array(self.froms, dtype=np.int64), np.array(self.tos, dtype=np.int64)
        leaves = np.frombuffer(bytes(self.leaves), dtype=_LEAF)
        by_run: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for row, entry in self.shown:
            by_run[entry["proof"]["run"]].append((row, entry))
        for run_id, items in sorted(by_run.items()):
            selected = np.nonzero((froms <= run_id) & (tos > run_id))[0]
            order = np.argsort(leaves[selected], kind="stable")
            rank = np.empty(len(selected), dtype=np.int64)
            rank[order] = np.arange(len(selected))
            tree = MerkleTree(leaves[selected][order].tobytes())
            run = runs[run_id]
            if tree.root() != run.merkle_root:
                raise BundleError(
                    f"run {run.id} (#{run.seq}, {run.source}): the evidence in the database does "
                    "not match the run's Merkle root: the ledger is broken (see `annexa verify`)")
            for row, entry in items:
                index = int(rank[np.searchsorted(selected, row)])
                entry["proof"].update(index=index, size=len(selected), path=tree.path(index))


def _window_runs(conn: Connection, start: datetime, end: datetime) -> tuple[list[RunRow],
                                                                            RunRow | None]:
    sealed = RUNS.c.seq.is_not(None)
    last = conn.scalar(sa.select(sa.func.max(RUNS.c.seq)).where(sealed, RUNS.c.finished_at <= end))
    if last is None:
        raise BundleError(f"no sealed run had finished by {end.isoformat()}: nothing to export")
    baselines = (sa.select(sa.func.max(RUNS.c.id))
                 .where(sealed, RUNS.c.finished_at <= start).group_by(RUNS.c.source))
    firsts = [
        conn.scalar(sa.select(sa.func.min(RUNS.c.seq)).where(RUNS.c.id.in_(baselines))),
        conn.scalar(sa.select(sa.func.min(RUNS.c.seq)).where(
            sealed, RUNS.c.finished_at > start, RUNS.c.finished_at <= end)),
    ]
    first = min(s for s in firsts if s is not None)
    runs = list(conn.execute(sa.select(RUNS).where(RUNS.c.seq.between(first - 1, last))
                             .order_by(RUNS.c.seq)))
    anchor = runs.pop(0) if runs and runs[0].seq == first - 1 else None
    for expected, run in enumerate(runs, start=first):
        if run.seq != expected:
            raise BundleError(f"the chain has no run #{expected}: the ledger is broken "
                              "(see `annexa verify`)")
    return runs, anchor


def _errors(conn: Connection, first_seq: int, last_seq: int) -> dict[int, list[dict[str, str]]]:
    ids = sa.select(RUNS.c.id).where(RUNS.c.seq.between(first_seq, last_seq))
    rows = conn.execute(sa.select(ERRORS.c.run_id, ERRORS.c.scope, ERRORS.c.region,
                                  ERRORS.c.service, ERRORS.c.kinds, ERRORS.c.message)
                        .where(ERRORS.c.run_id.in_(ids)))
    out: dict[int, list[dict[str, str]]] = defaultdict(list)
    for run_id, scope, region, service, kinds, message in rows:
        out[run_id].append({"scope": scope, "region": region, "service": service, "kinds": kinds,
                            "message": message})
    return out


def _run_entry(run: RunRow, errors: list[dict[str, str]]) -> dict[str, Any]:
    header = ledger.run_header(run, errors)
    if ledger.chain_hash(header) != run.chain_hash:
        raise BundleError(f"run {run.id} (#{run.seq}): its record does not match its chain hash: "
                          "the ledger is broken (see `annexa verify`)")
    entry = {"header": header, "chain_hash": run.chain_hash, "signature": run.signature,
             "key_id": run.key_id}
    if run.handover_signature:
        entry["handover_signature"] = run.handover_signature
    return entry


def _public(hex_key: str, what: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
    except ValueError:
        raise BundleError(f"{what} is not 64 hex characters of an Ed25519 key") from None


def _keys(conn: Connection, runs: list[RunRow], public_key_hex: str | None
          ) -> tuple[Ed25519PublicKey, dict[str, str], list[dict[str, Any]]]:
    """The bundle's public key (the given one, else the key of the chain's newest run), the
    public keys of every key that signed a run of the window, and the key history: every
    handover of the chain outside the window, which links those keys to that public key (or
    to any older key an auditor pins) through the retired keys' co-signatures."""
    if public_key_hex is None:
        newest = conn.scalar(sa.select(RUNS.c.key_id).where(RUNS.c.seq.is_not(None))
                             .order_by(RUNS.c.seq.desc()).limit(1))
        public_key_hex = conn.scalar(sa.select(KEYS.c.public_key).where(KEYS.c.key_id == newest))
        if public_key_hex is None:
            raise BundleError(f"the public key {newest} that signed the chain's newest run is "
                              "not in the database: give it explicitly")
    public = _public(public_key_hex, "the public key")
    registered = dict(conn.execute(sa.select(KEYS.c.key_id, KEYS.c.public_key)).all())
    keys = {}
    for run in runs:
        if run.key_id not in registered:
            raise BundleError(f"run {run.id} (#{run.seq}) was signed by key {run.key_id}, whose "
                              "public key is not in the database")
        keys[run.key_id] = registered[run.key_id]
    inside = {run.id for run in runs}
    handovers = [run for run in conn.execute(sa.select(RUNS).where(
        RUNS.c.seq.is_not(None), RUNS.c.key_change.is_not(None)).order_by(RUNS.c.seq))
        if run.id not in inside]
    errors = {run.id: run_errors(conn, run.id) for run in handovers}
    for run in handovers:
        change = json.loads(run.key_change)
        if change["previous_key_id"] in registered:
            keys.setdefault(change["previous_key_id"], registered[change["previous_key_id"]])
    return public, keys, [_run_entry(run, errors[run.id]) for run in handovers]


def _source_rows(conn: Connection, leaves: _SourceLeaves, checks: dict[str, Check],
                 shown_keys: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All rows of the source over its window runs, as leaves; the results of the selected
    checks, the resource versions they name and those keyed in `shown_keys` (the selected
    controls' SoA entries), as manifest entries."""
    lo, hi, source = leaves.run_ids[0], leaves.run_ids[-1], leaves.source
    results: list[dict[str, Any]] = []
    subjects: set[str] = set()
    digests: set[str] = set()
    cols = (RESULTS.c.check_id, RESULTS.c.subject, RESULTS.c.kind, RESULTS.c.region,
            RESULTS.c.status, RESULTS.c.reason, RESULTS.c.evidence, RESULTS.c.result_digest,
            RESULTS.c.valid_from_run, RESULTS.c.valid_to_run)
    for r in conn.execute(valid_between(RESULTS, source, lo, hi, *cols)):
        row = leaves.add(ledger.result_leaf(r.check_id, r.subject, r.result_digest),
                         r.valid_from_run, r.valid_to_run)
        run_id = leaves.first_run(r.valid_from_run, r.valid_to_run)
        if r.check_id not in checks or run_id is None:
            continue
        evidence = json.loads(r.evidence)
        if ledger.result_digest(r.check_id, r.subject, r.status, r.reason,
                                evidence) != r.result_digest:
            raise BundleError(f"check result {r.check_id} on {r.subject}: its content does not "
                              "match its digest: the ledger is broken (see `annexa verify`)")
        entry = {"source": source, "check": r.check_id, "subject": r.subject, "kind": r.kind,
                 "region": r.region, "status": r.status, "reason": r.reason,
                 "evidence": evidence, "result_digest": r.result_digest,
                 "valid_from_run": r.valid_from_run, "valid_to_run": r.valid_to_run}
        leaves.show(row, entry, run_id)
        results.append(entry)
        subjects.add(r.subject)
        digests.update(evidence)
    versions: list[dict[str, Any]] = []
    cols = (VERSIONS.c.kind, VERSIONS.c.key, VERSIONS.c.region, VERSIONS.c.digest,
            VERSIONS.c.valid_from_run, VERSIONS.c.valid_to_run)
    for v in conn.execute(valid_between(VERSIONS, source, lo, hi, *cols)):
        row = leaves.add(ledger.resource_leaf(v.key, v.digest), v.valid_from_run, v.valid_to_run)
        run_id = leaves.first_run(v.valid_from_run, v.valid_to_run)
        if run_id is None or (v.key not in subjects and v.digest not in digests
                              and v.key not in shown_keys):
            continue
        entry = {"source": source, "kind": v.kind, "key": v.key, "region": v.region,
                 "digest": v.digest, "file": evidence_path(v.digest),
                 "valid_from_run": v.valid_from_run, "valid_to_run": v.valid_to_run}
        leaves.show(row, entry, run_id)
        versions.append(entry)
    return results, versions


def _evidence(conn: Connection, digests: set[str]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    ordered = sorted(digests)
    for i in range(0, len(ordered), _CHUNK):
        rows = conn.execute(sa.select(BLOBS.c.digest, BLOBS.c.size, BLOBS.c.body.is_(None))
                            .where(BLOBS.c.digest.in_(ordered[i:i + _CHUNK])))
        for digest, size, pruned in rows:
            found[digest] = ({"digest": digest, "file": None, "size": size, "pruned": True}
                             if pruned else
                             {"digest": digest, "file": evidence_path(digest), "size": size})
    missing = digests - found.keys()
    if missing:
        raise BundleError(f"evidence {min(missing)} is named by a record but has no blob: the "
                          "ledger is broken (see `annexa verify`)")
    return [found[d] for d in ordered]


def _posture(conn: Connection, start: datetime, end: datetime, runs: list[RunRow],
             only: list[str] | None, freshness: timedelta
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Control status at the window's start and after each run that finished in the window:
    exactly what `annexa controls --at` says at those instants."""
    points: list[dict[str, Any]] = [{"at": start.isoformat(), "run": None, "seq": None,
                                     "source": None}]
    instants = [start]
    for run in runs:
        if run.finished_at and start < run.finished_at <= end:
            points.append({"at": run.finished_at.isoformat(), "run": run.id, "seq": run.seq,
                           "source": run.source})
            instants.append(run.finished_at)
    controls: list[dict[str, Any]] = []
    for i, at in enumerate(instants):
        for j, state in enumerate(control_states(conn, at, freshness, only)):
            if i == 0:
                controls.append({"id": state.id, "title": state.title, "theme": state.theme,
                                 "checks": [c.check.id for c in state.checks], "status": []})
            controls[j]["status"].append(state.status)
    return points, controls


def build_manifest(conn: Connection, start: datetime, end: datetime,
                   controls: list[str] | None = None, public_key_hex: str | None = None,
                   freshness: timedelta = DEFAULT_FRESHNESS) -> dict[str, Any]:
    """The bundle's manifest.json as a dict (see the module docstring). Raises BundleError and
    snapshot.UnknownControl."""
    return _prepare(conn, start, end, controls, public_key_hex, freshness, None)[0]


def _prepare(conn: Connection, start: datetime, end: datetime, controls: list[str] | None,
             public_key_hex: str | None, freshness: timedelta, progress: Progress | None
             ) -> tuple[dict[str, Any], Ed25519PublicKey]:
    only = require_controls(controls)
    if start >= end:
        raise BundleError(f"the window is empty: --from {start.isoformat()} is not before "
                          f"--to {end.isoformat()}")
    checks = checks_for(only)
    runs, anchor = _window_runs(conn, start, end)
    first, last = runs[0].seq or 0, runs[-1].seq or 0
    public, keys, key_history = _keys(conn, [*runs, *([anchor] if anchor else [])],
                                      public_key_hex)
    errors = _errors(conn, first - 1, last)
    by_source: dict[str, list[int]] = defaultdict(list)
    for run in runs:
        by_source[run.source].append(run.id)
    results: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    by_id = {run.id: run for run in runs}
    # The SoA entries travel with the bundle: an exclusion is why a control with failing
    # checks reads not_applicable, and the verifier must be able to see it.
    soa_keys = {soa.KEY_PREFIX + c for c in (only or catalogue())}
    for source, run_ids in sorted(by_source.items()):
        leaves = _SourceLeaves(source, sorted(run_ids))
        source_results, source_versions = _source_rows(conn, leaves, checks, soa_keys)
        leaves.prove(by_id)
        results.extend(source_results)
        versions.extend(source_versions)
        if progress is not None:
            progress.count(EXPORT_TASK, source, resources=len(source_versions))
    digests = {v["digest"] for v in versions} | {d for r in results for d in r["evidence"]}
    points, postures = _posture(conn, start, end, runs, only, freshness)
    manifest = {
        "format": FORMAT,
        "generated_at": now().isoformat(),
        "window": {"from": start.isoformat(), "to": end.isoformat(), "first_seq": first,
                   "last_seq": last},
        "controls_selected": only or [],
        "freshness_seconds": int(freshness.total_seconds()),
        "public_key": {"file": PUBLIC_KEY, "key_id": ledger.key_id(public)},
        "keys": dict(sorted(keys.items())),
        "key_history": key_history,
        "report": {"file": REPORT, "renderer": RENDERER},
        "anchor": _run_entry(anchor, errors.get(anchor.id, [])) if anchor else None,
        "runs": [_run_entry(run, errors.get(run.id, [])) for run in runs],
        "checks": {cid: {"title": c.title, "severity": c.severity,
                         "resource_kind": c.resource_kind, "controls": sorted(c.controls),
                         "remediation": c.remediation} for cid, c in sorted(checks.items())},
        "points": points,
        "controls": postures,
        "resources": sorted(versions, key=lambda v: (v["source"], v["key"],
                                                     v["valid_from_run"])),
        "results": sorted(results, key=lambda r: (r["source"], r["check"], r["subject"],
                                                  r["valid_from_run"])),
        "evidence": _evidence(conn, digests),
    }
    return manifest, public


def export_bundle(engine: Engine, start: datetime, end: datetime, controls: list[str] | None,
                  out_path: Path | str, public_key_hex: str | None = None,
                  freshness: timedelta = DEFAULT_FRESHNESS,
                  progress: Progress | None = None) -> BundleSummary:
    """Write the bundle for [start, end] to `out_path` (replaced only once complete).
    `public_key_hex`: the raw Ed25519 public key that signed the window (None: the one the
    database registered for the window's runs). `progress` counts the resource versions read
    per source and the evidence files written."""
    out = Path(out_path)
    partial = out.with_name(out.name + ".partial")
    with engine.connect() as conn:
        manifest, public = _prepare(conn, start, end, controls, public_key_hex, freshness,
                                    progress)
        text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False)
        pem = public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        files = [e["digest"] for e in manifest["evidence"] if e["file"]]
        try:
            with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(MANIFEST, text)
                zf.writestr(PUBLIC_KEY, pem)
                zf.writestr(REPORT, render_report(json.loads(text)))
                _write_evidence(conn, zf, files, progress)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    os.replace(partial, out)
    if progress is not None:
        progress.done(EXPORT_TASK, "written")
    return BundleSummary(
        path=str(out), first_seq=manifest["window"]["first_seq"],
        last_seq=manifest["window"]["last_seq"], runs=len(manifest["runs"]),
        resources=len(manifest["resources"]), results=len(manifest["results"]),
        evidence_files=len(files), pruned=len(manifest["evidence"]) - len(files),
        key_id=manifest["public_key"]["key_id"])


# The task that an export's progress is counted as.
EXPORT_TASK = "export"


def _write_evidence(conn: Connection, zf: zipfile.ZipFile, digests: list[str],
                    progress: Progress | None) -> None:
    for i in range(0, len(digests), _CHUNK):
        rows = conn.execute(sa.select(BLOBS.c.digest, BLOBS.c.body)
                            .where(BLOBS.c.digest.in_(digests[i:i + _CHUNK])))
        for digest, body in rows:
            data = decompress(body)
            if sha256_hex(data) != digest:
                raise BundleError(f"blob {digest}: content does not match its digest: the "
                                  "ledger is broken (see `annexa verify`)")
            zf.writestr(evidence_path(digest), data)
            if progress is not None:
                progress.count(EXPORT_TASK, "evidence files", resources=1)
