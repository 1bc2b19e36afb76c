"""The `annexa` command line. Exit codes: 0 done, 1 a source failed or the ledger is broken,
2 bad configuration or an un-migrated database."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path

from checks.registry import load_all
from collector import config as configuration
from collector.config import Config, ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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
    from collector.ledger import load_or_create_signer

    return load_or_create_signer(cfg.signing_key)


def cmd_collect(cfg: Config, args: argparse.Namespace) -> int:
    from collector.pipeline import collect_source

    sources = [cfg.source(args.source)] if args.source else cfg.sources
    if not sources:
        raise ConfigError(f"{cfg.path}: sources: no source is configured")
    engine, signer = _engine(cfg), _signer(cfg)
    code = EXIT_OK
    for source in sources:
        out = collect_source(engine, source, signer)
        s = out.stats
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s.by_status.items())) or "no results"
        print(f"{source.name}: {out.status} in {out.seconds:.1f}s, run {out.run_id} sealed as "
              f"#{out.seq}; {s.resources} resources ({s.new_versions} new versions, "
              f"{s.new_blobs} new blobs); results: {counts}")
        for err in out.errors:
            print(f"  error: {err.service} in {err.region}: {err.message}")
        if out.status == "failed":
            print(f"  source failed: {out.message}", file=sys.stderr)
            code = EXIT_FAILED
    return code


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
    print(f"{'control':<8} {'status':<15} {'failing checks':<15} title")
    for s in states:
        failing = sum(1 for c in s.checks if c.status == "fail")
        print(f"{s.id:<8} {s.status:<15} {failing if s.checks else '-':<15} {s.title}")
    totals: dict[str, int] = {}
    for s in states:
        totals[s.status] = totals.get(s.status, 0) + 1
    print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    return EXIT_OK


def cmd_checks(cfg: Config | None, args: argparse.Namespace) -> int:
    registry = load_all()
    rows = [{"id": c.id, "title": c.title, "resource_kind": c.resource_kind,
             "controls": dict(c.controls), "severity": c.severity,
             "remediation": c.remediation} for c in sorted(registry.values(), key=lambda c: c.id)]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for r in rows:
        print(f"{r['id']:<58} {r['severity']:<8} {','.join(r['controls']):<22} {r['title']}")
    print(f"{len(rows)} checks")
    return EXIT_OK


def cmd_verify(cfg: Config, args: argparse.Namespace) -> int:
    from collector.chain import verify
    from collector.ledger import load_public_key

    engine = _engine(cfg)
    key_path = Path(args.public_key) if args.public_key else cfg.signing_key
    if not key_path.exists():
        raise UsageError(f"{key_path}: no signing key to verify with (give --public-key)")
    report = verify(engine, load_public_key(key_path))
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.ok:
        print(f"ledger intact: {report.runs} runs, {report.blobs} blobs, {report.results} "
              "results verified")
        return EXIT_OK
    print(f"ledger BROKEN: {report.problems[0]}")
    for problem in report.problems[1:]:
        print(f"  also: {problem}")
    return EXIT_FAILED


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
    Service(cfg, _engine(cfg), _signer(cfg)).serve()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from collector.demo.run import demo

    return demo(Path(args.db), once=args.once, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="annexa", description=__doc__)
    p.add_argument("--config", help="configuration file (default: $ANNEXA_CONFIG or ./annexa.yaml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="collect every source (or one) now and seal the run")
    c.add_argument("--source", help="only this source")
    c = sub.add_parser("controls", help="Annex A control status, now or at an instant")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.add_argument("--at", help="ISO 8601 instant (a date means the end of that day, UTC)")
    c.add_argument("--control", action="append", help="only this control id (repeatable)")
    c = sub.add_parser("checks", help="every registered check and its controls")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c = sub.add_parser("verify", help="recompute every digest, root, link and signature")
    c.add_argument("--public-key", help="verify against this key instead of signing_key")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command",
                                                                     required=True)
    db.add_parser("upgrade", help="apply Alembic migrations")
    sub.add_parser("run", help="the service: scheduled collections and /metrics")
    c = sub.add_parser("demo", help="collect from a seeded AWS emulator into SQLite")
    c.add_argument("--once", action="store_true", help="exit after the first collection")
    c.add_argument("--db", default="annexa-demo.db", help="SQLite file (default annexa-demo.db)")
    c.add_argument("--port", type=int, default=9464, help="metrics port for the service part")
    return p


COMMANDS = {"collect": cmd_collect, "controls": cmd_controls, "verify": cmd_verify,
            "run": cmd_run}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command in ("run", "demo")
                        else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    try:
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "checks":
            return cmd_checks(None, args)
        cfg = configuration.load(args.config)
        load_all()
        if args.command == "db":
            return cmd_db_upgrade(cfg, args)
        return COMMANDS[args.command](cfg, args)
    except ConfigError as exc:
        print(f"annexa: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"annexa: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from collector.migrate import NotMigrated

        if isinstance(exc, NotMigrated):
            print(f"annexa: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())


