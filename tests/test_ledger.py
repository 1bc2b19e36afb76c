"""`annexa verify`: intact ledgers pass; every kind of alteration is caught and named."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from collector.db import engine_for
from collector.store import compress, decompress
from tests.helpers import annexa, emulator_client, write_config


@pytest.fixture
def history(tmp_path: Path, database_url: str, moto_url: str, capsys) -> Path:
    """Three sealed runs with changes between them."""
    client = emulator_client(moto_url)
    iam = client("iam", "us-east-1")
    iam.create_user(UserName="alice")
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    iam.create_user(UserName="bob")
    client("kms", "us-east-1").create_key(Description="orders")
    assert annexa(capsys, config, "collect")[0] == 0
    iam.delete_user(UserName="alice")
    assert annexa(capsys, config, "collect")[0] == 0
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0, out
    assert "ledger intact: 3 runs" in out
    return config


def _tamper(config: Path, database_url: str, *statements: str) -> None:
    engine = sa.create_engine(database_url)  # a plain engine: SQLite without foreign keys
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET session_replication_role = replica"))  # no FK checks
        for stmt in statements:
            conn.execute(sa.text(stmt))
    engine.dispose()


def _broken(capsys, config: Path) -> str:
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1, out
    assert "ledger BROKEN" in out
    return out


def test_changed_blob_is_named(history, database_url, capsys):
    engine = engine_for(database_url, check_schema=False)
    with engine.begin() as conn:
        digest, body = conn.execute(sa.text(
            "SELECT digest, body FROM blobs ORDER BY digest LIMIT 1")).one()
        forged = compress(decompress(body).replace(b"alice", b"mallory"))
        if forged == body:
            forged = compress(decompress(body) + b" ")
        conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                     {"b": forged, "d": digest})
    assert f"blob {digest}" in _broken(capsys, history)


def test_bodies_stored_with_zlib_before_zstandard_still_verify_and_read(history, database_url,
                                                                          capsys):
    engine = engine_for(database_url, check_schema=False)
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT digest, body FROM blobs")).all()
        assert rows and all(bytes(body[:4]) == b"\x28\xb5\x2f\xfd" for _, body in rows)
        for digest, body in rows:
            conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                         {"b": zlib.compress(decompress(body), 6), "d": digest})
    engine.dispose()
    code, out, _ = annexa(capsys, history, "verify")
    assert code == 0 and "ledger intact: 3 runs" in out, out


def test_changed_result_is_named(history, database_url, capsys):
    engine = engine_for(database_url, check_schema=False)
    with engine.begin() as conn:
        rid = conn.scalar(sa.text(
            "SELECT id FROM check_results WHERE status = 'fail' ORDER BY id LIMIT 1"))
    _tamper(history, database_url, f"UPDATE check_results SET status = 'pass' WHERE id = {rid}")
    assert f"check result {rid}" in _broken(capsys, history)


def test_altered_run_summary_is_named(history, database_url, capsys):
    """The counts kept on a run feed every posture: hiding a failure there must not go unseen."""
    import json

    engine = engine_for(database_url, check_schema=False)
    with engine.begin() as conn:
        run_id, counts = conn.execute(sa.text(
            "SELECT id, result_counts FROM runs WHERE result_counts LIKE '%fail%' "
            "ORDER BY id DESC LIMIT 1")).one()
    summary = json.loads(counts)
    check = next(c for c, by_status in summary.items() if by_status.get("fail"))
    summary[check]["pass"] = summary[check].get("pass", 0) + summary[check].pop("fail")
    forged = json.dumps(summary, sort_keys=True).replace("'", "''")
    _tamper(history, database_url,
            f"UPDATE runs SET result_counts = '{forged}' WHERE id = {run_id}")
    out = _broken(capsys, history)
    assert f"run {run_id} " in out and "result counts do not match" in out


def test_result_with_recomputed_digest_breaks_the_merkle_root(history, database_url, capsys):
    from collector.ledger import result_digest

    engine = engine_for(database_url, check_schema=False)
    with engine.begin() as conn:
        row = conn.execute(sa.text(
            "SELECT id, check_id, subject, reason, evidence FROM check_results "
            "WHERE status = 'fail' ORDER BY id LIMIT 1")).one()
        import json

        digest = result_digest(row.check_id, row.subject, "pass", row.reason,
                               json.loads(row.evidence))
        conn.execute(sa.text("UPDATE check_results SET status='pass', result_digest=:d "
                             "WHERE id=:i"), {"d": digest, "i": row.id})
    out = _broken(capsys, history)
    assert "Merkle root does not match" in out


def test_deleted_result_is_detected(history, database_url, capsys):
    _tamper(history, database_url,
            "DELETE FROM check_results WHERE id = (SELECT MIN(id) FROM check_results)")
    assert "run 1 (seq 1" in _broken(capsys, history)


def test_deleted_run_is_detected(history, database_url, capsys):
    _tamper(history, database_url, "DELETE FROM collection_errors WHERE run_id = 2",
            "DELETE FROM runs WHERE seq = 2")
    out = _broken(capsys, history)
    assert "expected seq 2: a run is missing" in out


def test_reordered_runs_are_detected(history, database_url, capsys):
    _tamper(history, database_url,
            "UPDATE runs SET seq = 100 WHERE seq = 2",
            "UPDATE runs SET seq = 2 WHERE seq = 3",
            "UPDATE runs SET seq = 3 WHERE seq = 100")
    assert "link to the previous run is broken" in _broken(capsys, history)


def test_altered_run_header_is_detected(history, database_url, capsys):
    _tamper(history, database_url, "UPDATE runs SET status = 'complete', resources = 999 "
                                   "WHERE seq = 2")
    assert "run 2 (seq 2" in _broken(capsys, history)


def test_other_key_is_refused(history, tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = tmp_path / "other.pub"
    other.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    code, out, _ = annexa(capsys, history, "verify", "--public-key", str(other))
    assert code == 1
    assert "not by the expected key" in out


@pytest.mark.parametrize("text", ["plain", "", 'quote " and \\ backslash', "tab\tnew\nline\x01",
                                  "café ✓ 𝄞", "\u2028\u2029", "</script>"])
def test_leaf_and_digest_encodings_are_the_canonical_json_of_their_fields(text):
    """The hashed bytes are defined as canonical JSON (what an offline verifier recomputes):
    the fast encodings must give exactly those bytes for any string."""
    import hashlib

    from collector import ledger
    from collector.canonical import canonical, sha256_hex

    assert ledger.resource_leaf(text, "d") == hashlib.sha256(
        b"\x00" + canonical(["resource", text, "d"])).digest()
    assert ledger.result_leaf("c", text, "d") == hashlib.sha256(
        b"\x00" + canonical(["result", "c", text, "d"])).digest()
    for evidence in ([], [text], ["a", text]):
        assert ledger.result_digest("c", text, "fail", text, evidence) == sha256_hex(
            canonical(["c", text, "fail", text, evidence]))


def test_stored_evidence_is_the_json_of_its_digests():
    import json

    from collector.canonical import sha256_hex
    from collector.store import evidence_json, parse_evidence

    for digests in ([], [sha256_hex(b"a")], sorted(sha256_hex(bytes([i])) for i in range(3))):
        assert evidence_json(digests) == json.dumps(digests)
        assert parse_evidence(evidence_json(digests)) == json.loads(json.dumps(digests)) == digests


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962 section 2.1, spelled as the RFC recurses, for comparison."""
    import hashlib

    if len(leaves) == 1:
        return leaves[0]
    split = 1 << (len(leaves) - 1).bit_length() - 1
    return hashlib.sha256(b"\x01" + _rfc6962_root(leaves[:split])
                          + _rfc6962_root(leaves[split:])).digest()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000, 2 * 65_536 + 5])
def test_the_merkle_root_is_rfc_6962s_tree_hash(size):
    import random

    from collector import ledger

    rng = random.Random(size)
    leaves = [rng.randbytes(32) for _ in range(size)]
    assert ledger.merkle_root(b"".join(leaves)) == _rfc6962_root(leaves).hex()


@pytest.mark.parametrize("size", [0, 1, 2, 1000, 65_536, 65_537, 100_000])
def test_leaves_are_sorted_bytewise_whether_few_or_many(size):
    """Small sets are sorted as bytes objects, large ones by numpy: both in memcmp order, as
    an offline verifier sorts. Leaves that differ only in their last byte, or end in zero
    bytes, are where a string comparison could go wrong."""
    import random

    from collector.ledger import LeafSet

    rng = random.Random(size)
    leaves = [rng.randbytes(32) for _ in range(size)]
    for i in range(0, size - 3, 4):
        stem = leaves[i][:31]
        leaves[i + 1:i + 4] = [stem + b"\x00", stem + b"\x01", stem[:30] + b"\x00\x00"]
    found = LeafSet()
    found.extend(leaves)
    assert found.sorted_bytes() == b"".join(sorted(leaves))
    assert len(found) == 0
