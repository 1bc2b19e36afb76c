"""Support for the auditor API and interchange tests: two sealed runs of a moto-backed AWS
source with a change between them, tokens made through the CLI, and a real API server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.registry import load_all
from collector import config as configuration
from collector.api import ApiServer, create_app
from collector.api.bad_tokens import BadTokenLimiter
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from tests.helpers import annexa, emulator_client, write_config


@dataclass(frozen=True)
class TwoRuns:
    config: Path
    database_url: str
    first_finished: datetime  # run 1: the KMS key does not rotate
    second_started: datetime  # run 2: it rotates
    second_finished: datetime
    rotated_digest: str  # the key's blob as collected by run 2 only


def two_runs(tmp_path: Path, database_url: str, moto_url: str,
             capsys: pytest.CaptureFixture[str]) -> TwoRuns:
    client = emulator_client(moto_url)
    kms = client("kms", "us-east-1")
    key_id = kms.create_key(Description="orders")["KeyMetadata"]["KeyId"]
    client("iam", "us-east-1").create_user(UserName="alice")
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    kms.enable_key_rotation(KeyId=key_id)
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text(
            "SELECT id, started_at, finished_at FROM runs ORDER BY id")).all()
        assert len(runs) == 2
        rotated = conn.scalar(sa.text(
            "SELECT digest FROM resource_versions WHERE kind = 'aws.kms.key' "
            "AND valid_from_run = :r"), {"r": runs[1].id})
    engine.dispose()
    assert rotated, "run 2 recorded a new version of the rotated key"
    return TwoRuns(config, database_url, _aware(runs[0].finished_at),
                   _aware(runs[1].started_at), _aware(runs[1].finished_at), rotated)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text through a plain engine
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def token(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> str:
    code, out, err = annexa(capsys, config, "token", "create", "--role", "auditor", *args)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("annexa_"), out
    return lines[0]


def expire(database_url: str, name: str, at: datetime) -> None:
    """Let the token `name` expire at `at`, an instant already past: as time would, since a
    token cannot be made with an expiry in the past."""
    from collector.tokens import TOKENS

    engine = engine_for(database_url)
    with engine.begin() as conn:
        conn.execute(TOKENS.update().where(TOKENS.c.name == name).values(expires_at=at))
    engine.dispose()


@contextmanager
def api_server(config: Path, bad_tokens: BadTokenLimiter | None = None) -> Iterator[str]:
    """The auditor API of this configuration, served by uvicorn on a free loopback port."""
    cfg = configuration.load(str(config))
    load_all()
    engine = engine_for(cfg.database)
    signer = load_or_create_signer(cfg.signing_key)
    server = ApiServer(create_app(engine, cfg.freshness_window, signer.public_hex,
                                  bad_tokens=bad_tokens), "127.0.0.1", 0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        engine.dispose()
