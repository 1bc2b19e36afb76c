"""Support for the tests of manual controls: a configuration without sources, row counts, the
shipped example SoA, and the service's API with its signing key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key
from checks.registry import load_all
from collector import config as configuration
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.service import Service
from tests.helpers import annexa

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SOA = ROOT / "config" / "soa.yaml"
CONTROL_IDS = sorted(catalogue(), key=sort_key)
TABLES = ("runs", "blobs", "resource_versions", "check_results")


def manual_config(tmp_path: Path, database_url: str, **extra: Any) -> Path:
    """A configuration with no source: the SoA and attestations need none."""
    cfg = {"database": database_url, "signing_key": str(tmp_path / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0},
           "api": {"host": "127.0.0.1", "port": 0}, **extra}
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def upgraded(capsys: pytest.CaptureFixture[str], config: Path) -> Path:
    code, out, err = annexa(capsys, config, "db", "upgrade")
    assert code == 0, out + err
    return config


def counts(database_url: str) -> dict[str, int]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        out = {t: conn.scalar(sa.text(f"SELECT COUNT(*) FROM {t}")) for t in TABLES}
    engine.dispose()
    return out


def rows(database_url: str, query: str, **params: Any) -> list[sa.Row]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        found = conn.execute(sa.text(query), params).all()
    engine.dispose()
    return found


def run_json(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> Any:
    code, out, err = annexa(capsys, config, *args)
    assert code == 0, out + err
    return json.loads(out)


def by_control(doc: list[dict[str, Any]] | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Rows of `controls --format json` or of `soa --format json`, by control id."""
    if isinstance(doc, dict):
        return {row["control"]: row for row in doc["controls"]}
    return {row["id"]: row for row in doc}


def instant() -> str:
    return datetime.now(UTC).isoformat()


def verified(capsys: pytest.CaptureFixture[str], config: Path) -> str:
    code, out, err = annexa(capsys, config, "verify")
    assert code == 0, out + err
    assert "ledger intact" in out
    return out


@contextmanager
def service_api(config: Path) -> Iterator[str]:
    """The API exactly as `annexa run` serves it (with the signing key, so owners can attest),
    on a free loopback port."""
    cfg = configuration.load(str(config))
    load_all()
    engine = engine_for(cfg.database)
    service = Service(cfg, engine, load_or_create_signer(cfg.signing_key))
    api = service._start_api()
    try:
        yield api.url
    finally:
        api.stop()
        engine.dispose()
