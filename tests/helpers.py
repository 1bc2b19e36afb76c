"""Helpers for tests that drive the `annexa` CLI against real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from collector.cli import main

REGIONS = ["us-east-1", "eu-west-1"]


def write_config(tmp_path: Path, database_url: str, moto_url: str, **source: Any) -> Path:
    return config_file(tmp_path, database_url, {
        "name": "aws-test", "kind": "aws", "schedule": "1h", "regions": REGIONS,
        "endpoint_url": moto_url, "max_attempts": 2, **source})


def config_file(tmp_path: Path, database_url: str, source: dict[str, Any]) -> Path:
    """annexa.yaml in `tmp_path` with one source, the database, and ports chosen at start."""
    cfg = {
        "database": database_url,
        "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0},
        "api": {"host": "127.0.0.1", "port": 0},
        "sources": [source],
    }
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


PEOPLE_CHECKS = ("people.leaver_holds_no_active_account",
                 "people.account_belongs_to_active_person", "people.privileged_account_has_mfa",
                 "people.privilege_held_through_known_account")


def people_config(capsys: pytest.CaptureFixture[str], tmp_path: Path, database_url: str,
                  sources: list[dict[str, Any]], people: dict[str, Any]) -> Path:
    """annexa.yaml with these sources and `people:`, its database migrated and every source
    collected once (and the people joined after them)."""
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump({
        "database": database_url, "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
        "sources": sources, "people": people}))
    assert annexa(capsys, path, "db", "upgrade")[0] == 0
    code, _, err = annexa(capsys, path, "collect")
    assert code == 0, err
    return path


def people_failing(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, set[str]]:
    """The failing subjects of each people check (empty sets included)."""
    failing = failing_by_check(controls_json(capsys, config))
    return {c: failing.get(c, set()) for c in PEOPLE_CHECKS}


def annexa(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def controls_json(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> list[dict]:
    code, out, err = annexa(capsys, config, "controls", "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def assert_export_verifies(capsys: pytest.CaptureFixture[str], config: Path, bundle: Path,
                           start: str = "2000-01-01", end: str = "2100-01-01") -> None:
    """`annexa export` of the window into `bundle`, which `verify-bundle` then accepts."""
    code, _, err = annexa(capsys, config, "export", "--from", start, "--to", end,
                          "--out", str(bundle))
    assert code == 0, err
    capsys.readouterr()
    assert main(["verify-bundle", str(bundle)]) == 0, capsys.readouterr().out


def by_key(items: list[Any]) -> dict[str, dict[str, Any]]:
    """The data of a connector's resources by key."""
    from collector.model import Resource

    return {i.key: i.data for i in items if isinstance(i, Resource)}


def failing_by_check(controls: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for control in controls:
        for chk in control["checks"]:
            out[chk["id"]] = set(chk["failing_resources"])
    return out


def emulator_client(moto_url: str):  # type: ignore[no-untyped-def]
    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=moto_url)
    return client


def assert_failures_are_planted(planted: dict[str, set[str]], items: list[Any],
                                checks: set[str], fail_only: frozenset[str] = frozenset()
                                ) -> None:
    """Each of `checks` fails on exactly its planted keys, and (unless in `fail_only`, whose
    seeds have no good resource) passes at least one; nothing could not be collected or
    judged."""
    from checks.registry import load_all
    from collector.evaluate import evaluate_all
    from collector.model import CollectionError

    assert not [i for i in items if isinstance(i, CollectionError)]
    load_all()
    outcomes = [o for o in evaluate_all(items) if o.check.id in checks]
    assert not [o for o in outcomes if o.verdict.status == "error"]
    for check_id in sorted(checks):
        failing = {o.subject for o in outcomes
                   if o.check.id == check_id and o.verdict.status == "fail"}
        assert failing == planted.get(check_id, set()), check_id
        if check_id not in fail_only:
            assert any(o.check.id == check_id and o.verdict.status == "pass"
                       for o in outcomes), (
                f"{check_id} passes nothing: good resources are not recognised")


def evidence(items: list[Any]) -> list[tuple[str, str, str]]:
    """A connector's resources, in an order that does not depend on which listing answered
    first."""
    from collector.model import Resource

    return sorted((r.kind, r.key, json.dumps(r.data, sort_keys=True))
                  for r in items if isinstance(r, Resource))


def errors(items: list[Any]) -> list[Any]:
    from collector.model import CollectionError

    return [i for i in items if isinstance(i, CollectionError)]


def assert_ledger_and_bundle_verify(capsys: pytest.CaptureFixture[str], config: Path,
                                    tmp_path: Path) -> None:
    """`annexa verify` passes, and a bundle of everything so far exports and verifies."""
    assert annexa(capsys, config, "verify")[0] == 0
    assert_export_verifies(capsys, config, tmp_path / "bundle.zip")
def open_versions(database_url: str, kind: str) -> int:
    """How many resources of `kind` the store holds as current."""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        count = conn.scalar(sa.text("SELECT COUNT(*) FROM resource_versions WHERE kind = :kind "
                                    "AND valid_to_run IS NULL"), {"kind": kind})
    engine.dispose()
    return int(count or 0)


def assert_unchanged_sealed_and_exported(capsys: pytest.CaptureFixture[str], config: Path,
                                         tmp_path: Path, started: Any) -> None:
    """An unchanged second run adds nothing, the ledger verifies, and a bundle of the window
    from `started` verifies offline."""
    from datetime import timedelta

    from collector.schema import now

    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "(0 new versions, 0 new blobs)" in out, out
    assert annexa(capsys, config, "verify")[0] == 0
    assert_export_verifies(capsys, config, tmp_path / "bundle.zip", started.isoformat(),
                           (now() + timedelta(seconds=1)).isoformat())


def demo_collected(module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   collect: Any) -> tuple[Any, Any, list[Any]]:
    """Start the demo of `module_name` (which DEMOS must name), collect its source with
    `collect` and stop it: (the DemoSource, its SourceConfig, what was collected)."""
    import importlib

    from collector.config import SourceConfig
    from collector.demo.emulators import DEMOS

    assert module_name in DEMOS
    demo = importlib.import_module(module_name).start_demo(tmp_path)
    try:
        for name, value in demo.env.items():
            monkeypatch.setenv(name, value)
        source = SourceConfig(**demo.source)
        items = list(collect(source.settings()))
    finally:
        demo.stop()
    return demo, source, items


class socket_closed_port:
    """A loopback port that nothing listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
