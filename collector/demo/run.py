"""`annexa demo`: an in-process AWS emulator (moto) seeded with a sample organisation, one
collection into SQLite, the control table, then the service with metrics until Ctrl-C."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

REGIONS = ["us-east-1", "eu-west-1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator() -> tuple[Any, str]:
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit("annexa demo needs the AWS emulator: pip install 'annexa[demo]'") from None
    # The emulator reports actions it does not implement (and every request) through werkzeug.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def start_http_demos(workdir: Path) -> list[Any]:
    """Start the HTTPS emulators of collector.demo.emulators.DEMOS, each seeded with a sample
    organisation; their credentials go into this process's environment."""
    import importlib

    from collector.demo.emulators import DEMOS

    started = []
    try:
        for name in DEMOS:
            demo_source = importlib.import_module(name).start_demo(workdir)
            os.environ.update(demo_source.env)
            started.append(demo_source)
    except BaseException:
        for demo_source in started:
            demo_source.stop()
        raise
    return started


def demo(db: Path, *, once: bool, port: int) -> int:
    import boto3

    from checks.registry import load_all
    from collector import migrate
    from collector.cli import cmd_controls
    from collector.config import Config, MetricsConfig, PeopleConfig, SourceConfig
    from collector.db import engine_for
    from collector.demo.seed import seed_all
    from collector.ledger import load_or_create_signer
    from collector.service import Service

    # The emulator accepts any credentials; these keep real ones from ever being sent to it.
    for name, value in (("AWS_ACCESS_KEY_ID", "demo"), ("AWS_SECRET_ACCESS_KEY", "demo"),
                        ("AWS_DEFAULT_REGION", REGIONS[0])):
        os.environ[name] = value
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    db = db.resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    server, url = start_emulator()
    http_demos: list[Any] = []
    try:
        print(f"AWS emulator on {url}; seeding a sample organisation in {', '.join(REGIONS)}")

        def client(service: str, region: str) -> Any:
            return boto3.client(service, region_name=region, endpoint_url=url)

        planted = seed_all(client, REGIONS)
        print(f"seeded {sum(len(v) for v in planted.values())} planted gaps across "
              f"{len(planted)} checks")
        http_demos = start_http_demos(db.parent)
        for demo_source in http_demos:
            gaps = sum(len(v) for v in demo_source.planted.values())
            print(f"{demo_source.source['kind']} emulator for {demo_source.source['name']}: "
                  f"{gaps} planted gaps across {len(demo_source.planted)} checks")
        sources = [SourceConfig(name="aws-demo", kind="aws", schedule="15m", regions=REGIONS,
                                endpoint_url=url)]
        sources += [SourceConfig.model_validate({"schedule": "15m", **d.source})
                    for d in http_demos]
        # The demo's Entra tenant is the truth about its people; each source's run joins
        # them again, its accounts judged as theirs (annexa-people).
        idps = [s.name for s in sources if s.kind == "entra"]
        cfg = Config(
            database=f"sqlite:///{db}", signing_key=db.with_suffix(".key"),
            metrics=MetricsConfig(port=port), path=db, sources=sources,
            people=PeopleConfig(authoritative=idps[0]) if idps else None,
        )
        migrate.upgrade(engine_for(cfg.database, check_schema=False))
        load_all()
        engine = engine_for(cfg.database)
        service = Service(cfg, engine, load_or_create_signer(cfg.signing_key))
        failed = False
        for source in cfg.sources:
            out = service.collect(source, join_people=False)
            assert out is not None, "nothing else collects the demo's database"
            failed |= out.status == "failed"
            print(f"{source.name}: collected {out.stats.resources} resources: {out.status}, "
                  f"run sealed as #{out.seq} "
                  f"(chain {out.chain_hash[:16] if out.chain_hash else '-'}...)")
        if cfg.people is not None:
            joined = service.join_people()
            assert joined is not None, "nothing else joins the demo's people"
            failed |= joined.status == "failed"
            print(f"people joined across the sources: {joined.stats.resources} people and "
                  f"accounts: {joined.status}, run sealed as #{joined.seq}")

        class Args:
            format, at, control = "table", None, None

        cmd_controls(cfg, Args())  # type: ignore[arg-type]
        cfg_file = db.with_suffix(".yaml")
        cfg_file.write_text(f"database: sqlite:///{db}\nsigning_key: {cfg.signing_key}\n")
        print(f"\nevidence in {db}; query it later with: annexa --config {cfg_file} verify "
              "(or controls)")
        if once:
            return 1 if failed else 0
        print(f"service running: metrics on http://127.0.0.1:{port}/metrics (Ctrl-C stops)")
        sys.stdout.flush()
        service.serve(collect_at_start=False)
        return 0
    finally:
        for demo_source in http_demos:
            demo_source.stop()
        server.stop()
