"""The `annexa` command line. Exit codes: 0 done, 1 a source failed or the ledger is broken,
2 bad configuration or a database that cannot be used (unreachable, un-migrated), 141 the
reader of the output went away."""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from checks.registry import load_all
from collector import config as configuration
from collector.config import Config, ConfigError, SourceConfig
from collector.safe_output import JsonFormatter, SafeFormatter, TerminalStream, cell, printable
from collector.tables import STATUS_STYLES, Column, print_table, render

if TYPE_CHECKING:  # the commands import the engine's modules lazily, to start fast
    from sqlalchemy import Engine

    from collector.ledger import Signer
    from collector.organizations import UnitRunner
    from collector.pipeline import RunOutcome
    from collector.progress import Progress
    from collector.soa import Loaded

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# What a shell reports for a command that SIGPIPE ended: 128 + 13.
EXIT_BROKEN_PIPE = 141


class UsageError(Exception):
    pass


def parse_instant(text: str) -> datetime:
    """ISO 8601; a bare date means the end of that day; no offset means UTC."""
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, time.max, tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not an ISO 8601 date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _engine(cfg: Config):  # type: ignore[no-untyped-def]
    from collector.db import engine_for

    return engine_for(cfg.database)


def _signer(cfg: Config):  # type: ignore[no-untyped-def]
    from collector.held_keys import KeyUnusable
    from collector.ledger import load_signer

    try:
        return load_signer(cfg.signing_key, cfg.retired_signing_keys)
    except KeyUnusable as exc:
        raise ConfigError(f"{cfg.path}: signing_key: {exc}") from None


def _public_key(cfg: Config, given: str | None):  # type: ignore[no-untyped-def]
    """The key to verify with: --public-key, else the public half of signing_key."""
    from collector.held_keys import KeyUnusable
    from collector.ledger import load_public_key, public_key_of

    if given:
        return load_public_key(Path(given))
    if isinstance(cfg.signing_key, Path) and not cfg.signing_key.exists():
        raise UsageError(f"{cfg.signing_key}: no signing key to verify with (give --public-key)")
    try:
        return public_key_of(cfg.signing_key)
    except KeyUnusable as exc:
        raise ConfigError(f"{cfg.path}: signing_key: {exc}") from None


def _chosen_sources(cfg: Config, args: argparse.Namespace) -> list[SourceConfig]:
    """The sources a command works on: `--source`, else every configured one."""
    sources = [cfg.source(args.source)] if args.source else cfg.sources
    if not sources:
        raise ConfigError(f"{cfg.path}: sources: no source is configured")
    return sources


def cmd_collect(cfg: Config, args: argparse.Namespace) -> int:
    from collector.locks import NotStarted
    from collector.organizations import collect
    from collector.progress_display import live_progress

    sources = _chosen_sources(cfg, args)
    engine, signer = _engine(cfg), _signer(cfg)
    runner = _queue_runner(cfg, engine)
    code = EXIT_OK
    with live_progress(args.quiet) as progress:
        _load_configured_soa(cfg, engine, signer, progress)
        for source in sources:
            try:
                outcomes = collect(engine, source, signer, writer=cfg.writer, wait=args.wait,
                                   run_units=runner, progress=progress)
            except NotStarted as exc:
                print(f"{source.name}: not collected: {printable(str(exc))}", file=sys.stderr)
                code = EXIT_FAILED
                continue
            for out in outcomes:
                code = max(code, print_outcome(out))
    if cfg.people is not None:
        code = max(code, _collect_people(cfg, engine, signer, args.wait))
    return code


def _queue_runner(cfg: Config, engine: Engine) -> UnitRunner | None:
    """With `queue:`, units are enqueued for `annexa worker` and their seals awaited."""
    if cfg.queue is None:
        return None
    from collector.cluster.app import make_app
    from collector.cluster.dispatch import queue_runner

    return queue_runner(make_app(cfg), engine, cfg.queue.wait_seconds)


def cmd_worker(cfg: Config, args: argparse.Namespace) -> int:
    if cfg.queue is None:
        raise ConfigError(f"{cfg.path}: queue: is not configured; `annexa worker` serves a "
                          "queue (queue: {broker: redis://host:6379/0})")
    from collector.cluster.app import run_worker

    _engine(cfg).dispose()  # the schema is current before any task is taken
    return run_worker(cfg, args.concurrency, args.metrics_port)


def print_outcome(out: RunOutcome) -> int:
    """The summary of one sealed run; EXIT_FAILED when its collection failed."""
    s = out.stats
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.by_status.items())) or "no results"
    print(f"{out.source}: {out.status} in {out.seconds:.1f}s, run {out.run_id} sealed as "
          f"#{out.seq}; {s.resources} resources ({s.new_versions} new versions, "
          f"{s.new_blobs} new blobs); results: {counts}")
    if out.status == "retired":
        print(f"  retired: {printable(out.message or '')}")
    if s.failures_kept:
        print(f"  {s.failures_kept} earlier failure(s) kept: their data could not be read "
              "or judged this time")
    for err in out.errors:
        print(f"  error: {err.service} in {err.region}: {printable(err.message)}")
    if out.status == "failed":
        print(f"  source failed: {printable(out.message or '')}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _collect_people(cfg: Config, engine: Engine, signer: Signer, wait: float) -> int:
    """Join the people again after the sources they rest on were collected."""
    from collector.locks import NotStarted
    from collector.people.mapping import MappingError
    from collector.people.run import collect_people

    try:
        out = collect_people(engine, cfg, signer, wait=wait)
    except MappingError as exc:
        raise ConfigError(f"people.mapping: {exc}") from None
    except NotStarted as exc:
        print(f"people: not joined: {printable(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    counts = ", ".join(f"{n} {k}" for k, n in sorted(out.stats.by_status.items()))
    print(f"{out.source}: {out.status}, run {out.run_id} sealed as #{out.seq}; "
          f"{out.stats.resources} people and accounts; results: {counts or 'none'}")
    for err in out.errors:
        print(f"  not judged again: {printable(err.message)}")
    return EXIT_FAILED if out.status == "failed" else EXIT_OK


def cmd_controls(cfg: Config, args: argparse.Namespace) -> int:
    from collector.posture import control_states
    from collector.schema import now

    at = parse_instant(args.at) if args.at else now()
    with _engine(cfg).connect() as conn:
        states = control_states(conn, at, cfg.freshness_window, args.control or None)
    if args.format == "json":
        print(json.dumps([s.as_dict() for s in states], indent=2))
        return EXIT_OK
    print(f"Annex A posture as of {at.isoformat(timespec='seconds')}")
    print_table(CONTROL_COLUMNS, [
        (s.id, s.status, sum(1 for c in s.checks if c.status == "fail") if s.checks else "-",
         s.title) for s in states])
    totals: dict[str, int] = {}
    for s in states:
        totals[s.status] = totals.get(s.status, 0) + 1
    print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    failing = {c.check.id: c for s in states for c in s.checks if c.status == "fail"}
    if failing:
        print("\nfailing checks (resources failing / judged):")
        print_table(FAILING_COLUMNS, [
            (check_id, f"{len(c.failing)}/"
             f"{sum(n for k, n in c.counts.items() if k != 'not_applicable')}",
             ", ".join(c.check.controls)) for check_id, c in sorted(failing.items())])
    return EXIT_OK


def cmd_status(cfg: Config, args: argparse.Namespace) -> int:
    """Exit 1 when a source's (or account's) last run failed, its evidence is stale or was
    never collected, or the last verify found the ledger broken."""
    from collector import status, status_table
    from collector.schema import now

    report = status.gather(cfg, _engine(cfg), now())
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        status_table.print_status(report)
    return EXIT_FAILED if report.problems() else EXIT_OK


CONTROL_COLUMNS = (Column("control"), Column("status", styles=STATUS_STYLES),
                   Column("failing checks", justify="right"), Column("title", fit="wrap"))
FAILING_COLUMNS = (Column("check", fit="middle"), Column("failing", justify="right"),
                   Column("controls", fit="wrap"))
CHECK_COLUMNS = (Column("check", fit="middle"), Column("severity"),
                 Column("controls", fit="wrap"), Column("title", fit="wrap"))


def cmd_checks(cfg: Config | None, args: argparse.Namespace) -> int:
    registry = load_all()
    rows = [{"id": c.id, "title": c.title, "resource_kind": c.resource_kind,
             "controls": dict(c.controls), "severity": c.severity,
             "remediation": c.remediation} for c in sorted(registry.values(), key=lambda c: c.id)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print_table(CHECK_COLUMNS, [(r["id"], r["severity"], ", ".join(r["controls"]), r["title"])
                                for r in rows])
    print(f"{len(rows)} checks")
    return EXIT_OK


def cmd_verify(cfg: Config, args: argparse.Namespace) -> int:
    from collector.verifications import verify_and_record

    engine = _engine(cfg)
    expect = parse_head(args.expect_head) if args.expect_head else None
    verified = verify_and_record(engine, _public_key(cfg, args.public_key), "cli", expect)
    report = verified.report
    if verified.unrecorded:
        report.warnings.append(f"this verification was not recorded for `annexa status`: "
                               f"{verified.unrecorded}")
    for warning in report.warnings:
        print(f"warning: {printable(warning)}")
    if report.ok:
        witnessed = f"; seq {expect[0]} is the witnessed {expect[1]}" if expect else ""
        print(f"ledger intact: {report.runs} runs, {report.blobs} blobs, {report.results} "
              f"results, {report.access_entries} API access log entries verified{witnessed}")
        return EXIT_OK
    print(f"ledger BROKEN: {printable(report.problems[0])}")
    for problem in report.problems[1:]:
        print(f"  also: {printable(problem)}")
    return EXIT_FAILED


def parse_head(text: str) -> tuple[int, str]:
    """`SEQ:HASH`: a sequence number and its chain hash, whole or its first 13 or more hex
    digits (as annexa_ledger_head_hash_prefix and the seal log lines give them)."""
    seq, _, digest = text.partition(":")
    digest = digest.strip().lower()
    if not seq.strip().isdigit() or len(digest) < 13 or len(digest) > 64 or any(
            c not in "0123456789abcdef" for c in digest):
        raise UsageError(f"--expect-head {text!r} is not SEQ:HASH (a sequence number and at "
                         "least 13 hex digits of its chain hash)")
    return int(seq), digest


def cmd_key(cfg: Config, args: argparse.Namespace) -> int:
    from collector import manual_ledger
    from collector.canonical import canonical
    from collector.ledger import rotate_key
    from collector.schema import now

    if not isinstance(cfg.signing_key, Path):
        raise UsageError("signing_key is held in a token or KMS, where annexa makes no keys: "
                         "make the new Ed25519 key there, name it as signing_key and the old "
                         "one under retired_signing_keys; the next seal is the handover, "
                         "signed by both")
    engine = _engine(cfg)
    old, new = rotate_key(cfg.signing_key)
    record = {"key_id": new.key_id, "public_key": new.public_hex,
              "previous_key_id": old.key_id, "rotated_at": now().isoformat()}
    written = manual_ledger.write_run(engine, new, KEYS_SOURCE, [manual_ledger.Item(
        "annexa.signing_key", f"annexa:key:{new.key_id}", canonical(record))], replace=False)
    print(f"signing key rotated: {old.key_id} -> {new.key_id}; the handover is run "
          f"{written.run.run_id}, sealed as #{written.run.seq} by both keys. The retired key "
          f"stays in {cfg.signing_key.name}.retired-{old.key_id[:16]} (it signs nothing more); "
          f"give auditors the new public key")
    return EXIT_OK


# The reserved source whose runs record key rotations.
KEYS_SOURCE = "annexa-keys"


def cmd_prune(cfg: Config, args: argparse.Namespace) -> int:
    from collector.retention import prune

    if not any(s.retention for s in cfg.sources):
        raise UsageError("prune: no source has `retention:`, so nothing is ever due")
    out = prune(_engine(cfg), cfg, _signer(cfg), dry_run=args.dry_run)
    for due in out.sources:
        print(f"{due.source}: retention {due.retention}, evidence superseded before "
              f"{due.cutoff.isoformat()}: {len(due.digests)} bodies, "
              f"{due.bytes / 2**20:.1f} MiB {'due' if args.dry_run else 'dropped'}")
    if out.run is None:
        print("dry run: nothing dropped" if args.dry_run else "nothing is due")
        return EXIT_OK
    if out.run.status != "complete":
        print(f"prune run {out.run.run_id} {out.run.status}: {out.run.message}; nothing dropped",
              file=sys.stderr)
        return EXIT_FAILED
    print(f"pruned {out.dropped} bodies; the digests stay, listed in run {out.run.run_id} "
          f"sealed as #{out.run.seq}")
    return EXIT_OK


def cmd_db_upgrade(cfg: Config, args: argparse.Namespace) -> int:
    from collector import migrate
    from collector.db import engine_for

    before, after = migrate.upgrade(engine_for(cfg.database, check_schema=False))
    print(f"database at revision {after}" + (f" (was {before})" if before != after else
                                              " (already current)"))
    return EXIT_OK


def cmd_run(cfg: Config, args: argparse.Namespace) -> int:
    from collector.service import Service

    if not cfg.sources:
        raise ConfigError(f"{cfg.path}: sources: no source is configured")
    engine, signer = _engine(cfg), _signer(cfg)
    _load_configured_soa(cfg, engine, signer, None)
    Service(cfg, engine, signer).serve()
    return EXIT_OK


def _load_configured_soa(cfg: Config, engine: Engine, signer: Signer,
                         progress: Progress | None) -> None:
    """`soa:` in the configuration: loaded before collecting, so that a changed file becomes a
    new version of the SoA (an unchanged one adds nothing)."""
    if cfg.soa is not None:
        _print_loaded(_load_soa(engine, signer, cfg.soa, progress))


def _load_soa(engine: Engine, signer: Signer, path: Path, progress: Progress | None) -> Loaded:
    from collector import soa

    try:
        return soa.load(engine, signer, path, progress)
    except soa.SoaError as exc:
        raise UsageError(f"the Statement of Applicability was not loaded:\n{exc}") from None


def _print_loaded(loaded: Loaded) -> None:
    if loaded.run is None:
        print(f"{loaded.path}: SoA unchanged ({loaded.entries} controls); nothing stored")
        return
    shown = ", ".join(loaded.changed[:10]) + (" ..." if len(loaded.changed) > 10 else "")
    print(f"{loaded.path}: SoA loaded ({loaded.entries} controls; {len(loaded.changed)} changed:"
          f" {shown}); run {loaded.run.run_id} sealed as #{loaded.run.seq}")


def cmd_people(cfg: Config, args: argparse.Namespace) -> int:
    from collector.people import report
    from collector.schema import now

    at = parse_instant(args.at) if args.at else now()
    try:
        with _engine(cfg).connect() as conn:
            if args.history:
                if not args.person:
                    raise UsageError("people --history needs --person EMAIL")
                timeline = report.history(conn, args.person)
                print(json.dumps(timeline, indent=2) if args.format == "json"
                      else _history_table(timeline))
                return EXIT_OK
            doc = report.review(conn, at, args.person, args.privileged)
    except report.NoPeople as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json":
        print(json.dumps(doc["people"], indent=2))
    elif args.format == "csv":
        sys.stdout.write(report.as_csv(doc))
    elif args.format == "html":
        sys.stdout.write(report.as_html(doc))
    else:
        print(_people_table(doc))
    if args.format != "html":
        print(f"report digest: sha256 {report.digest(doc)} (people run #{doc['as_of']['seq']})",
              file=sys.stderr)
    return EXIT_OK


PEOPLE_COLUMNS = (Column("person", fit="middle"), Column("status", styles=STATUS_STYLES),
                  Column("source"), Column("active"), Column("privileges", fit="wrap"),
                  Column("account", fit="middle"))
ACCOUNT_HISTORY_COLUMNS = (Column("source"), Column("account", fit="middle"),
                           Column("removed"), Column("after leaving", justify="right"))


def _people_table(doc: dict) -> str:
    none = {"source": "-", "active": "-", "privileges": [], "key": "-"}
    rows = [(p["person"], p["status"], a["source"], a["active"],
             ", ".join(a["privileges"]) or "-", a["key"])
            for p in doc["people"] for a in p["accounts"] or [none]]
    return "\n".join([
        f"access review as of {doc['as_of']['at']} (people run #{doc['as_of']['seq']})",
        render(PEOPLE_COLUMNS, rows), f"{len(doc['people'])} people"])


def _history_table(timeline: dict) -> str:
    lines = [f"{cell(timeline['person'])}: left at {timeline['left_at'] or '(has not left)'}"]
    for change in timeline["status"]:
        lines.append(f"  status {cell(change['status'])} from {change['seen_at']}")
    if timeline["accounts"]:
        lines.append(render(ACCOUNT_HISTORY_COLUMNS, [
            (a["source"], a["key"], a["removed_at"] or "still active",
             "-" if a["gap_hours"] is None else f"{a['gap_hours']} h")
            for a in timeline["accounts"]]))
    return "\n".join(lines)


def cmd_soa(cfg: Config, args: argparse.Namespace) -> int:
    from collector.schema import now

    engine = _engine(cfg)
    if args.soa_command == "load":
        from collector.progress_display import live_progress

        path = Path(args.file) if args.file else cfg.soa
        if path is None:
            raise UsageError("soa load: give the SoA file, or name it as `soa:` in the "
                             "configuration")
        with live_progress(args.quiet) as progress:
            loaded = _load_soa(engine, _signer(cfg), path, progress)
        _print_loaded(loaded)
        return EXIT_OK
    from collector import soa_report

    at = parse_instant(args.at) if args.at else now()
    with engine.connect() as conn:
        doc = soa_report.statement(conn, at, cfg.freshness_window)
    sys.stdout.write(soa_report.RENDERERS[args.format](doc))
    return EXIT_OK


def cmd_attest(cfg: Config, args: argparse.Namespace) -> int:
    from collector import attestations

    try:
        documents = attestations.read_documents(args.file or [])
        att, run = attestations.attest(
            _engine(cfg), _signer(cfg), args.control, args.statement, args.owner, documents,
            args.review_every)
    except attestations.AttestationError as exc:
        raise UsageError(f"attest {args.control}: {exc}; nothing was stored") from None
    print(f"attestation {att.id} for {att.control} by {att.owner}: review due "
          f"{att.review_due.isoformat(timespec='seconds')}; run {run.run_id} sealed as "
          f"#{run.seq}")
    for doc in att.documents:
        print(f"  document {doc['name']}: sha256 {doc['digest']} ({doc['size']} bytes)")
    return EXIT_OK


def cmd_attestations(cfg: Config, args: argparse.Namespace) -> int:
    from collector.config import parse_duration
    from collector.posture import control_states
    from collector.schema import now
    from collector.snapshot import UnknownControl, require_controls

    at = parse_instant(args.at) if args.at else now()
    try:
        horizon = at + parse_duration(args.due_within) if args.due_within else None
    except ValueError as exc:
        raise UsageError(f"--due-within: {exc}") from None
    try:
        require_controls(args.control)
    except UnknownControl as exc:
        raise UsageError(f"--control {exc}") from None
    with _engine(cfg).connect() as conn:
        states = control_states(conn, at, cfg.freshness_window, args.control or None)
    rows = []
    for state in states:
        att = state.attestation
        if att is None or (state.soa is not None and not state.soa.applicable):
            continue  # none, or excluded by the SoA: no review is due
        if horizon is not None and att.review_due > horizon:
            continue
        rows.append({**att.as_dict(), "current": att.current(at), "control_status": state.status,
                     "days_left": (att.review_due - at).total_seconds() / 86400})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    window = f", review due within {args.due_within}" if args.due_within else ""
    print(f"attestations in force as of {at.isoformat(timespec='seconds')}{window}")
    print_table(ATTESTATION_COLUMNS, [
        (row["control"], "current" if row["current"] else "OVERDUE", row["review_due"][:19],
         f"{row['days_left']:.0f}", row["owner"], row["id"]) for row in rows])
    print(f"{len(rows)} attestation(s); {sum(1 for r in rows if not r['current'])} overdue"
          f" (`annexa attest CONTROL ...` records a review)")
    return EXIT_OK


ATTESTATION_COLUMNS = (Column("control"), Column("review", styles=STATUS_STYLES), Column("due"),
                       Column("days", justify="right"), Column("owner", fit="middle"),
                       Column("id", fit="middle"))


def parse_window(text: str) -> tuple[datetime | None, datetime | None]:
    """`T1..T2` (either side may be empty); a bare date starts or ends with its whole day."""
    first, sep, last = text.partition("..")
    if not sep or not (first or last):
        raise UsageError(f"--window {text!r} is not a range such as 2026-01-01..2026-03-31")
    start = _window_bound(first, "--window start", start=True) if first else None
    end = _window_bound(last, "--window end", start=False) if last else None
    if start and end and start > end:
        raise UsageError(f"--window {text!r} starts after it ends")
    return start, end


def parse_expiry(text: str, at: datetime) -> datetime:
    """A duration from now (`30d`, `12h`) or an ISO 8601 instant."""
    from collector.config import parse_duration

    try:
        return at + parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_instant(text)
    except UsageError:
        raise UsageError(f"--expires {text!r} is neither a duration (30d, 12h) nor an ISO 8601 "
                         "date or date-time") from None


def cmd_token(cfg: Config, args: argparse.Namespace) -> int:
    from collector import tokens
    from collector.schema import now

    engine = _engine(cfg)
    if args.token_command == "create":
        start, end = parse_window(args.window) if args.window else (None, None)
        expires = parse_expiry(args.expires, now()) if args.expires else None
        name = args.name or f"{args.role}-{now():%Y%m%d%H%M%S}"
        controls = [c.strip() for c in args.controls.split(",") if c.strip()] \
            if args.controls else None
        try:
            token, token_id = tokens.create(engine, role=args.role, name=name,
                                            window_start=start, window_end=end,
                                            expires_at=expires, controls=controls)
        except ValueError as exc:
            raise UsageError(f"token create: {exc}") from None
        window = f"{start.isoformat() if start else '-'} .. {end.isoformat() if end else '-'}"
        print(f"token {token_id} {name!r}: role {args.role}, window {window}, expires "
              f"{expires.isoformat() if expires else 'never'}; it is shown only now",
              file=sys.stderr)
        print(token)
        return EXIT_OK
    if args.token_command == "list":
        rows = tokens.listing(engine, now())
        if args.format == "json":
            print(json.dumps(rows, indent=2, default=str))
            return EXIT_OK
        print_table(TOKEN_COLUMNS, [
            (row["id"], row["name"], row["role"], row["state"],
             f"{row['window_start'] or '-'} .. {row['window_end'] or '-'}",
             row["expires_at"] or "never", ", ".join(row.get("controls") or ()) or "-")
            for row in rows])
        return EXIT_OK
    revoked = tokens.revoke(engine, args.token)
    if not revoked:
        raise UsageError(f"no active token with id or name {args.token!r}")
    print(f"revoked {revoked} token(s)")
    return EXIT_OK


TOKEN_COLUMNS = (Column("id", justify="right"), Column("name", fit="middle"), Column("role"),
                 Column("state", styles=STATUS_STYLES), Column("window", fit="wrap"),
                 Column("expires"), Column("controls", fit="wrap"))


def _window_bound(text: str, option: str, *, start: bool) -> datetime:
    """ISO 8601; a bare date starts (--from) or ends (--to) with its whole day."""
    try:
        value = parse_instant(text)
    except UsageError:
        raise UsageError(f"{option} {text!r} is not an ISO 8601 date or date-time") from None
    if start and len(text) == 10:
        value = datetime.combine(value.date(), time.min, tzinfo=UTC)
    return value


def cmd_snapshot(cfg: Config, args: argparse.Namespace) -> int:
    from collector.schema import now
    from collector.snapshot import UnknownControl, render_table, snapshot

    at = parse_instant(args.at) if args.at else now()
    try:
        with _engine(cfg).connect() as conn:
            snap = snapshot(conn, at, args.control, cfg.freshness_window,
                            failing_only=args.failing_only, summary=args.summary)
    except UnknownControl as exc:
        raise UsageError(f"--control {exc}") from None
    print(json.dumps(snap, indent=2) if args.format == "json" else render_table(snap))
    return EXIT_OK


def cmd_export(cfg: Config, args: argparse.Namespace) -> int:
    from collector.bundle import BundleError, export_bundle
    from collector.ledger import public_raw
    from collector.progress_display import live_progress
    from collector.snapshot import UnknownControl

    start = _window_bound(args.start, "--from", start=True)
    end = _window_bound(args.end, "--to", start=False)
    if start >= end:
        raise UsageError(f"--from {args.start} is not before --to {args.end}")
    if args.format != "bundle":
        return _export_interchange(cfg, args, start, end)
    if not args.out:
        raise UsageError("--out FILE.zip is required for a bundle")
    # The configured key when there is one; else the key the database registered for the runs.
    public_hex = None
    if not isinstance(cfg.signing_key, Path) or cfg.signing_key.exists():
        try:
            public_hex = public_raw(_public_key(cfg, None)).hex()
        except ValueError as exc:
            raise UsageError(f"signing_key {cfg.signing_key}: {exc}") from None
    try:
        with live_progress(args.quiet) as progress:
            summary = export_bundle(_engine(cfg), start, end, args.control, Path(args.out),
                                    public_hex, cfg.freshness_window, progress)
    except UnknownControl as exc:
        raise UsageError(f"--control {exc}") from None
    except BundleError as exc:
        print(f"annexa: export failed: {printable(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{summary.path}: runs #{summary.first_seq} to #{summary.last_seq} ({summary.runs} "
          f"runs), {summary.resources} resource versions, {summary.results} results, "
          f"{summary.evidence_files} evidence files; signed by key {summary.key_id}")
    return EXIT_OK


def _export_interchange(cfg: Config, args: argparse.Namespace, start: datetime,
                        end: datetime) -> int:
    """OSCAL assessment-results (JSON) or OCSF Compliance Findings (JSON lines), to --out or
    to stdout; a file appears only once complete."""
    from collector import ocsf, oscal
    from collector.snapshot import UnknownControl, require_controls

    try:
        only = require_controls(args.control)
    except UnknownControl as exc:
        raise UsageError(f"--control {exc}") from None
    out = Path(args.out) if args.out and args.out != "-" else None
    partial = out.with_name(out.name + ".partial") if out else None
    fh = partial.open("w", encoding="utf-8") if partial else sys.stdout
    try:
        with _engine(cfg).connect() as conn:
            if args.format == "oscal":
                doc = oscal.assessment_results(conn, start, end, cfg.freshness_window, only)
                json.dump(doc, fh, indent=1, ensure_ascii=False)
                fh.write("\n")
                result = doc["assessment-results"]["results"][0]
                what = (f"{len(result.get('observations', []))} observations, "
                        f"{len(result['findings'])} findings")
            else:
                what = f"{ocsf.write_lines(conn, start, end, fh, only)} compliance findings"
    except BaseException:
        if partial:
            fh.close()
            partial.unlink(missing_ok=True)
        raise
    if out and partial:
        fh.close()
        partial.replace(out)
    print(f"{out or 'stdout'}: {args.format} for {start.isoformat()} .. {end.isoformat()}, "
          f"{what}", file=sys.stderr if out is None else sys.stdout)
    return EXIT_OK


def cmd_verify_bundle(args: argparse.Namespace) -> int:
    from collector.bundle_verify import verify_bundle
    from collector.ledger import load_public_key

    path = Path(args.bundle)
    if not path.is_file():
        raise UsageError(f"{path}: no such bundle file")
    expected = None
    if args.public_key:
        try:
            expected = load_public_key(Path(args.public_key))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--public-key {args.public_key}: {exc}") from None
    report = verify_bundle(path, expected)
    for warning in report.warnings:
        print(f"warning: {printable(warning)}")
    if report.ok:
        print(f"bundle intact: runs #{report.first_seq} to #{report.last_seq} ({report.runs} "
              f"runs), {report.resources} resource versions, {report.results} results, "
              f"{report.files} evidence files verified; signed by key {report.key_id}")
        return EXIT_OK
    print(f"bundle BROKEN: {printable(report.problems[0])}")
    return EXIT_FAILED


def cmd_doctor(cfg: Config, args: argparse.Namespace) -> int:
    """Each source's access, probed: nothing is collected or stored."""
    from collector.doctor import COLUMNS, as_json, examine, table_rows

    reports = [examine(source) for source in _chosen_sources(cfg, args)]
    if args.format == "json":
        print(json.dumps(as_json(reports), indent=2))
    else:
        print_table(COLUMNS, table_rows(reports))
    return EXIT_OK if all(report.passed for report in reports) else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from collector.demo.run import demo

    return demo(Path(args.db), once=args.once, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="annexa", description=__doc__)
    p.add_argument("--config", help="configuration file (default: $ANNEXA_CONFIG or ./annexa.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no live progress on a terminal (collect, export, soa load)")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: one JSON object a line on stderr (ts, level, logger, message "
                        "and the record's extra fields)")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="collect every source (or one) now and seal the run")
    c.add_argument("--source", help="only this source")
    c.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="when another process is collecting a source, wait this long for it "
                        "to finish (default: do not wait; the source is reported as not "
                        "collected)")
    c = sub.add_parser("doctor", help="call each API every source needs once, and say per "
                                      "permission: granted, denied (with the fix) or "
                                      "unreachable (with the cause); nothing is stored")
    c.add_argument("--source", help="only this source")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = sub.add_parser("worker", help="run queued collections (needs queue: in the "
                                      "configuration)")
    c.add_argument("--concurrency", type=int, default=4, metavar="N",
                   help="collections run at once by this worker, each in a process of its "
                        "own (default 4)")
    c.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve this worker's own process metrics on PORT (metrics.host)")
    c = sub.add_parser("controls", help="Annex A control status, now or at an instant")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.add_argument("--at", help="ISO 8601 instant (a date means the end of that day, UTC)")
    c.add_argument("--control", action="append", help="only this control id (repeatable)")
    c = sub.add_parser("status", help="per source: the last run, the next one and evidence "
                                      "freshness; the store, the last verify, the API and "
                                      "metrics listening")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = sub.add_parser("checks", help="every registered check and its controls")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = sub.add_parser("verify", help="recompute every digest, root, link and signature")
    c.add_argument("--public-key", help="verify against this key instead of signing_key")
    c.add_argument("--expect-head", metavar="SEQ:HASH",
                   help="a chain head seen outside the database (a seal's log line, the "
                        "annexa_ledger_head_* metrics): fail unless the chain still holds it")
    key = sub.add_parser("key", help="the signing key").add_subparsers(dest="key_command",
                                                                        required=True)
    key.add_parser("rotate", help="make a new signing key; the old one signs the handover and "
                                  "nothing after it")
    c = sub.add_parser("prune", help="drop the bodies of evidence older than each source's "
                                     "retention (digests stay; the pruning is a sealed run)")
    c.add_argument("--dry-run", action="store_true", help="say what is due; drop nothing")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command",
                                                                     required=True)
    db.add_parser("upgrade", help="apply Alembic migrations")
    sub.add_parser("run", help="the service: scheduled collections and /metrics")
    tok = sub.add_parser("token", help="bearer tokens of the auditor API").add_subparsers(
        dest="token_command", required=True)
    c = tok.add_parser("create", help="make a token and print it (once)")
    c.add_argument("--role", choices=("auditor", "owner"), required=True,
                   help="auditor: reads; owner: attests its --controls")
    c.add_argument("--controls", help="owner tokens: the controls it may attest, A.5.1,A.5.2")
    c.add_argument("--window", help="only this period is visible: T1..T2 (ISO 8601 dates or "
                                    "date-times; either side may be left open)")
    c.add_argument("--expires", help="a duration from now (30d) or an ISO 8601 instant")
    c.add_argument("--name", help="who holds it (default: role and creation time)")
    c = tok.add_parser("list", help="every token (never the token itself)")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = tok.add_parser("revoke", help="revoke a token by id or name")
    c.add_argument("token", help="the token's id or name")
    c = sub.add_parser("soa", help="the Statement of Applicability as of an instant; "
                                   "`soa load [FILE]` records a new version")
    c.add_argument("--at", help="ISO 8601 instant (a date means the end of that day, UTC; "
                                "default: now)")
    c.add_argument("--format", choices=("csv", "html", "json"), default="csv")
    load = c.add_subparsers(dest="soa_command").add_parser(
        "load", help="validate the SoA file and record it if it changed")
    load.add_argument("file", nargs="?", help="the SoA YAML (default: `soa:` of the config)")
    c = sub.add_parser("people", help="the access review: every person's accounts and "
                                      "privileges in every source, as of an instant")
    c.add_argument("--at", help="ISO 8601 instant (a date means the end of that day, UTC)")
    c.add_argument("--person", help="only this person (their email)")
    c.add_argument("--privileged", action="store_true",
                   help="only people with privilege in some source")
    c.add_argument("--history", action="store_true",
                   help="with --person: when the identity provider deactivated them and when "
                        "each of their accounts was removed")
    c.add_argument("--format", choices=("table", "json", "csv", "html"), default="table")
    c = sub.add_parser("attest", help="record a signed attestation for a manual control")
    c.add_argument("control", help="the Annex A control id, such as A.5.1")
    c.add_argument("--statement", required=True, help="what is in place, and how")
    c.add_argument("--file", action="append", help="a supporting document (repeatable)")
    c.add_argument("--owner", required=True, help="the email address of who attests")
    c.add_argument("--review-every", default="365d",
                   help="review period, after which the control is stale (default 365d)")
    c = sub.add_parser("attestations", help="the attestations in force and their review dates")
    c.add_argument("--due-within", help="only reviews due within this period (30d), or overdue")
    c.add_argument("--at", help="ISO 8601 instant (default: now)")
    c.add_argument("--control", action="append", help="only this control id (repeatable)")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = sub.add_parser("snapshot", help="the state at an instant, with its evidence digests")
    c.add_argument("--at", help="ISO 8601 instant (a date means the end of that day, UTC; "
                                "default: now)")
    c.add_argument("--control", action="append", help="only this control id (repeatable)")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.add_argument("--failing-only", action="store_true",
                   help="list only failing and erroring results with their evidence (counts "
                        "still cover every result): fast on a large estate")
    c.add_argument("--summary", action="store_true",
                   help="statuses and counts only, no result listed: as fast on any estate")
    c = sub.add_parser("export", help="an evidence bundle of a window, verifiable offline")
    c.add_argument("--from", dest="start", required=True,
                   help="window start, ISO 8601 (a date means the start of that day, UTC)")
    c.add_argument("--to", dest="end", required=True,
                   help="window end, ISO 8601 (a date means the end of that day, UTC)")
    c.add_argument("--control", action="append", help="only this control id (repeatable)")
    c.add_argument("--out", help="the file to write (FILE.zip for a bundle; for oscal and ocsf "
                                 "stdout when omitted)")
    c.add_argument("--format", choices=("bundle", "oscal", "ocsf"), default="bundle",
                   help="bundle: zip with report, manifest, evidence and proofs; oscal: OSCAL "
                        "assessment-results JSON; ocsf: OCSF Compliance Findings, JSON lines")
    c = sub.add_parser("verify-bundle", help="verify an evidence bundle offline (no config)")
    c.add_argument("bundle", help="the bundle's zip file")
    c.add_argument("--public-key", help="the key you expect (PEM or 64 hex); must be the "
                                        "bundle's key")
    c = sub.add_parser("demo", help="collect from a seeded AWS emulator into SQLite")
    c.add_argument("--once", action="store_true", help="exit after the first collection")
    c.add_argument("--db", default="annexa-demo.db", help="SQLite file (default annexa-demo.db)")
    c.add_argument("--port", type=int, default=9464, help="metrics port for the service part")
    return p


COMMANDS = {"collect": cmd_collect, "controls": cmd_controls, "verify": cmd_verify,
            "token": cmd_token, "soa": cmd_soa, "attest": cmd_attest, "people": cmd_people,
            "key": cmd_key, "prune": cmd_prune, "status": cmd_status, "doctor": cmd_doctor,
            "attestations": cmd_attestations,
            "snapshot": cmd_snapshot, "export": cmd_export,
            "run": cmd_run, "worker": cmd_worker}


# glibc's mallopt parameter for the most malloc arenas (malloc.h).
M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX would, unless that is set. glibc gives
    threads their own arenas (up to 8 per core), each keeping memory that was freed in it: with
    the connector's and the S3 readers' threads, a collection at N=5000 peaked about 10 MB
    higher (bench/aws_scale.py) and no faster. Called before any thread starts; elsewhere than
    glibc it does nothing."""
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_ARENA_MAX, arenas)


def main(argv: Sequence[str] | None = None) -> int:
    """Every command's output goes through TerminalStream; a reader that goes away (`annexa
    controls | head`) ends the command quietly with 141, as a shell reports SIGPIPE."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = TerminalStream(out), TerminalStream(err)
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _silence(out)
        return EXIT_BROKEN_PIPE
    finally:
        sys.stdout, sys.stderr = out, err


def _silence(stream: TextIO) -> None:
    """The interpreter flushes stdout once more at exit: into the void, not the closed pipe."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    limit_malloc_arenas()
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else
                         SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    if args.verbose or args.command in ("run", "demo", "worker"):
        logging.getLogger("annexa").setLevel(logging.INFO)
    try:
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "checks":
            return cmd_checks(None, args)
        if args.command == "verify-bundle":
            return cmd_verify_bundle(args)
        cfg = configuration.load(args.config)
        load_all()
        if args.command == "db":
            return cmd_db_upgrade(cfg, args)
        return COMMANDS[args.command](cfg, args)
    except ConfigError as exc:
        print(f"annexa: configuration error: {printable(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"annexa: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from collector.db import DatabaseUnavailable, UnsupportedDriver
        from collector.migrate import NotMigrated

        if isinstance(exc, NotMigrated | UnsupportedDriver | DatabaseUnavailable):
            print(f"annexa: {printable(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())


