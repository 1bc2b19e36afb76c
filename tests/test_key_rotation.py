"""Signing-key rotation: the chain carries its own key history, verifies with the newest key
alone or a pinned older one, and refuses a retired key's signature after its rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.synthetic import resources
from collector import migrate
from collector.chain import RUNS, verify
from collector.config import SourceConfig
from collector.db import engine_for
from collector.ledger import Signer, load_or_create_signer, retired_path
from collector.pipeline import collect_source
from tests.helpers import annexa


@pytest.fixture
def store(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from checks.registry import load_all

    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    config = tmp_path / "annexa.yaml"
    config.write_text(f"database: {database_url}\nsigning_key: signing.key\n")
    yield engine, config, tmp_path / "signing.key"
    engine.dispose()


def _collect(engine: sa.Engine, signer: Signer, day: int = 0) -> None:
    out = collect_source(engine, SourceConfig(name="aws-prod", kind="aws"), signer,
                         items=resources(20, day=day, churn=0.5), writer="inline")
    assert out.status == "complete", out.message


def _pem(path: Path) -> Path:
    public = path.with_suffix(".pub")
    public.write_text(load_or_create_signer(path).public_hex)
    return public


def test_a_chain_across_two_rotations_verifies_with_any_of_its_keys(store, capsys) -> None:
    engine, config, key = store
    first = load_or_create_signer(key)
    _collect(engine, first)
    publics = [_pem(key)]
    for day in (1, 2):
        code, out, err = annexa(capsys, config, "key", "rotate")
        assert code == 0, err
        assert "signing key rotated" in out and "sealed as #" in out
        publics.append(_pem(key))
        _collect(engine, load_or_create_signer(key), day)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(RUNS.c.source, RUNS.c.key_id, RUNS.c.key_change,
                                      RUNS.c.handover_signature).order_by(RUNS.c.seq)).all()
    assert [r.source for r in rows] == ["aws-prod", "annexa-keys", "aws-prod", "annexa-keys",
                                        "aws-prod"]
    assert [bool(r.key_change) for r in rows] == [False, True, False, True, False]
    assert len({r.key_id for r in rows}) == 3
    for public in publics:  # the newest alone, or a pinned older one
        code, out, _ = annexa(capsys, config, "verify", "--public-key", str(public))
        assert code == 0, out
    stranger = key.parent / "stranger.pub"
    stranger.write_text(Signer(Ed25519PrivateKey.generate()).public_hex)
    code, out, _ = annexa(capsys, config, "verify", "--public-key", str(stranger))
    assert code == 1 and "not by the expected key" in out


def test_a_retired_key_that_signs_after_its_rotation_breaks_the_chain(store, capsys) -> None:
    engine, config, key = store
    old = load_or_create_signer(key)
    _collect(engine, old)
    assert annexa(capsys, config, "key", "rotate")[0] == 0
    # A process that kept the old key in memory, and cannot read the new file.
    _collect(engine, Signer(old.private), 1)
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1
    assert "a retired key signed after its rotation" in out, out


def test_a_running_service_picks_up_the_rotated_key(store, capsys) -> None:
    engine, config, key = store
    held = load_or_create_signer(key)
    _collect(engine, held)
    assert annexa(capsys, config, "key", "rotate")[0] == 0
    _collect(engine, held, 1)  # the signer read before the rotation reloads its file
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_key_swapped_without_rotation_is_reported(store, capsys) -> None:
    engine, config, key = store
    _collect(engine, load_or_create_signer(key))
    key.unlink()
    _collect(engine, load_or_create_signer(key), 1)  # a new key file, made on first use
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1 and "a key changed without a handover" in out, out


@pytest.mark.parametrize("forgery", ["handover", "key-change"])
def test_a_forged_handover_is_reported(store, capsys, forgery: str) -> None:
    engine, config, key = store
    _collect(engine, load_or_create_signer(key))
    assert annexa(capsys, config, "key", "rotate")[0] == 0
    assert retired_path(key, load_or_create_signer(key).retired.popitem()[0]).exists()
    with engine.begin() as conn:
        if forgery == "handover":
            conn.execute(RUNS.update().where(RUNS.c.key_change.is_not(None))
                         .values(handover_signature="00" * 64))
        else:
            conn.execute(RUNS.update().where(RUNS.c.key_change.is_not(None))
                         .values(key_change=sa.func.replace(RUNS.c.key_change, "previous",
                                                            "prior")))
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1
    assert ("not co-signed by the retired key" in out if forgery == "handover"
            else "header does not match its chain hash" in out), out


def test_verify_checks_every_run_after_a_rotation_of_an_empty_store(store, capsys) -> None:
    engine, config, key = store
    assert annexa(capsys, config, "key", "rotate")[0] == 0
    _collect(engine, load_or_create_signer(key))
    assert annexa(capsys, config, "verify")[0] == 0
    assert verify(engine, load_or_create_signer(key).public).ok


def test_bundles_across_rotations_verify_with_the_newest_key_or_a_pinned_older_one(
        store, capsys) -> None:
    from datetime import UTC, datetime

    engine, config, key = store
    started = datetime.now(UTC)
    _collect(engine, load_or_create_signer(key))
    publics = [_pem(key)]
    early = datetime.now(UTC)
    for day in (1, 2):
        assert annexa(capsys, config, "key", "rotate")[0] == 0
        publics.append(_pem(key))
        _collect(engine, load_or_create_signer(key), day)
    windows = {"all": (started, datetime.now(UTC)), "before-rotations": (started, early)}
    for name, (start, end) in windows.items():
        bundle = key.parent / f"{name}.zip"
        code, out, err = annexa(capsys, config, "export", "--from", start.isoformat(),
                                "--to", end.isoformat(), "--out", str(bundle))
        assert code == 0, err
        code, out, _ = annexa(capsys, config, "verify-bundle", str(bundle))
        assert code == 0, (name, out)
        for public in publics:  # the newest alone, or any pinned older one
            code, out, _ = annexa(capsys, config, "verify-bundle", str(bundle),
                                  "--public-key", str(public))
            assert code == 0, (name, public, out)


def test_a_bundle_with_a_retired_keys_signature_after_its_rotation_is_broken(store,
                                                                              capsys) -> None:
    from datetime import UTC, datetime

    engine, config, key = store
    started = datetime.now(UTC)
    old = load_or_create_signer(key)
    _collect(engine, old)
    assert annexa(capsys, config, "key", "rotate")[0] == 0
    _collect(engine, Signer(old.private), 1)
    bundle = key.parent / "misused.zip"
    assert annexa(capsys, config, "export", "--from", started.isoformat(), "--to",
                  datetime.now(UTC).isoformat(), "--out", str(bundle))[0] == 0
    code, out, _ = annexa(capsys, config, "verify-bundle", str(bundle))
    assert code == 1 and "a retired key signed after its rotation" in out, out
