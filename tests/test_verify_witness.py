"""What `annexa verify` promises beyond the chain itself: the API access log against its sealed
copies, and the newest runs against a head witnessed outside the database."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from bench.synthetic import resources
from collector import access_log, migrate
from collector.access_log import Access
from collector.chain import HEAD_PREFIX_DIGITS, RUNS, chain_head, verify
from collector.config import SourceConfig
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.metrics import Metrics
from collector.pipeline import collect_source
from collector.schema import now
from tests.helpers import annexa


@pytest.fixture
def ledger(database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    from checks.registry import load_all

    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    signer = load_or_create_signer(tmp_path / "signing.key")
    collect_source(engine, SourceConfig(name="aws-prod", kind="aws"), signer,
                   items=resources(40), writer="inline")
    for i in range(3):
        access_log.record(engine, Access(now(), "GET", f"/controls?i={i}", 200, "127.0.0.1",
                                         None, "auditor-q1", "auditor"))
    access_log.seal_pending(engine, signer)
    collect_source(engine, SourceConfig(name="aws-prod", kind="aws"), signer,
                   items=resources(40, day=1, churn=0.5), writer="inline")
    config = tmp_path / "annexa.yaml"
    config.write_text(f"database: {database_url}\nsigning_key: {tmp_path / 'signing.key'}\n")
    yield engine, signer, config
    engine.dispose()


def _head(engine: sa.Engine) -> tuple[int, str]:
    with engine.connect() as conn:
        head = chain_head(conn)
    assert head is not None
    return head


def test_a_deleted_newest_run_is_found_against_a_witnessed_head(ledger, capsys) -> None:
    engine, signer, config = ledger
    seq, digest = _head(engine)
    code, out, _ = annexa(capsys, config, "verify", "--expect-head", f"{seq}:{digest}")
    assert code == 0 and f"seq {seq} is the witnessed {digest}" in out
    with engine.begin() as conn:
        conn.execute(RUNS.delete().where(RUNS.c.seq == seq))
    # Alone, the database cannot tell: its remaining chain is whole.
    assert verify(engine, signer.public).ok
    code, out, _ = annexa(capsys, config, "verify", "--expect-head", f"{seq}:{digest[:13]}")
    assert code == 1
    assert (f"ledger BROKEN: the chain ends at seq {seq - 1}, but seq {seq} was witnessed: the "
            "newest runs were removed") in out


def test_a_rewritten_head_is_found_against_the_metrics_witness(ledger, capsys) -> None:
    engine, _, config = ledger
    metrics = Metrics()
    metrics.refresh_head(engine)
    seq = int(metrics.head_seq._value.get())
    witnessed = f"{int(metrics.head_hash._value.get()):0{HEAD_PREFIX_DIGITS}x}"
    assert (seq, witnessed) == (_head(engine)[0], _head(engine)[1][:HEAD_PREFIX_DIGITS])
    with engine.begin() as conn:
        conn.execute(RUNS.update().where(RUNS.c.seq == seq).values(chain_hash="0" * 64))
    code, out, _ = annexa(capsys, config, "verify", "--expect-head", f"{seq}:{witnessed}")
    assert code == 1 and "header does not match its chain hash" in out


@pytest.mark.parametrize("bad", ["7", "x:abc", "3:abc", "3:" + "g" * 13])
def test_a_malformed_witness_is_refused(ledger, capsys, bad: str) -> None:
    code, _, err = annexa(capsys, ledger[2], "verify", "--expect-head", bad)
    assert code == 2 and "is not SEQ:HASH" in err


def test_every_seal_logs_the_new_head(database_url, tmp_path, caplog) -> None:
    from checks.registry import load_all

    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    with caplog.at_level(logging.INFO, logger="annexa.chain"):
        out = collect_source(engine, SourceConfig(name="aws-prod", kind="aws"),
                             load_or_create_signer(tmp_path / "k"), items=resources(5),
                             writer="inline")
    assert f"as #{out.seq}, chain hash {out.chain_hash}" in caplog.text
    engine.dispose()


@pytest.mark.parametrize("tamper", ["alter", "delete", "move"])
def test_the_access_log_is_checked_against_its_sealed_copies(ledger, capsys, tamper) -> None:
    engine, _, config = ledger
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0 and "3 API access log entries verified" in out
    access = access_log.ACCESS
    with engine.begin() as conn:
        first = conn.scalar(sa.select(sa.func.min(access.c.id)))
        victim = access.c.id == first
        if tamper == "alter":
            conn.execute(access.update().where(victim).values(token_name="nobody"))
        elif tamper == "delete":
            conn.execute(access.delete().where(victim))
        else:
            conn.execute(access.update().where(victim).values(
                sealed_run=sa.select(sa.func.min(RUNS.c.id)).scalar_subquery()))
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1
    expected = {"alter": f"API access log entry {first}: differs from its sealed copy",
                "delete": f"API access log entry {first} was deleted: its sealed copy in run",
                "move": f"API access log entry {first}: its sealed copy in run"}[tamper]
    assert expected in out, out
