"""A history of three sealed runs with changes between them, for the auditor tests.

run 1: user alice (console password, no MFA; tags that carry secrets) and KMS key "orders"
       without rotation: aws.iam.user_console_mfa_enabled and aws.kms.key_rotation_enabled fail.
run 2: alice deleted, bob created (no password), rotation of "orders" enabled: both pass.
run 3: a second KMS key "ledger" without rotation: aws.kms.key_rotation_enabled fails again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from collector.cli import main
from collector.schema import now
from tests.helpers import emulator_client, write_config

# Seeded into the emulator; redaction must keep every one of them out of the evidence.
SECRETS = ("Hunter2-S3cret", "tok-9f8e7d6c5b4a", "tagged-hunter2")


@dataclass
class History:
    config: Path
    database_url: str
    run_ids: list[int]
    finished: list[datetime]
    before: datetime  # before the first run started
    after: list[datetime]  # after[i]: run i+1 has finished, the next has not started
    alice: str
    bob: str
    orders_key: str
    ledger_key: str


def _collect(config: Path) -> None:
    code = main(["--config", str(config), "collect"])
    assert code == 0, "collection from the emulator succeeds"


def build_history(tmp_path: Path, database_url: str, moto_url: str) -> History:
    client = emulator_client(moto_url)
    iam, kms = client("iam", "us-east-1"), client("kms", "us-east-1")
    alice = iam.create_user(UserName="alice", Tags=[
        {"Key": "note", "Value": "ops: password=Hunter2-S3cret"},
        {"Key": "db_password", "Value": "tagged-hunter2"},
    ])["User"]["Arn"]
    iam.create_login_profile(UserName="alice", Password="Initial-Passw0rd!")
    orders = kms.create_key(Description="orders; api token=tok-9f8e7d6c5b4a")["KeyMetadata"]
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    assert main(["--config", str(config), "db", "upgrade"]) == 0

    before = now()
    _collect(config)
    after = [now()]
    kms.enable_key_rotation(KeyId=orders["KeyId"])
    iam.delete_login_profile(UserName="alice")
    iam.delete_user(UserName="alice")
    bob = iam.create_user(UserName="bob")["User"]["Arn"]
    _collect(config)
    after.append(now())
    ledger_key = kms.create_key(Description="ledger")["KeyMetadata"]["Arn"]
    _collect(config)
    after.append(now())

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, finished_at FROM runs ORDER BY seq")).all()
    engine.dispose()
    finished = [_aware(f) for _, f in rows]
    return History(config, database_url, [r for r, _ in rows], finished, before, after, alice,
                   bob, orders["Arn"], ledger_key)


def _aware(value: datetime | str) -> datetime:
    from datetime import UTC

    if isinstance(value, str):  # SQLite hands back text through a plain engine
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
