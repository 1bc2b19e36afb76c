"""Signing keys held where they cannot be copied: an Ed25519 key in a PKCS#11 token (Debian's
SoftHSM, through python-pkcs11) seals runs that `verify` and `verify-bundle` accept with the
token's public key alone; a key made anew in the token takes over with the old one co-signing
the handover; a wrong PIN, a key that is not Ed25519 and a KMS key moto cannot make Ed25519 are
refused by name. moto's KMS has no ECC_NIST_EDWARDS25519 keys, so the KMS signer is tested only
as far as it refuses what moto can make."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from collector.held_keys import ED25519_OID, Pkcs11Key
from tests.helpers import annexa, assert_export_verifies
from tests.okta_support import OktaFake, okta_fake, okta_server

__all__ = ["okta_fake", "okta_server"]  # fixtures

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"


def _uri(label: str, pin: str = PIN) -> str:
    return f"pkcs11:token=annexa;object={label}?module-path={MODULE}&pin-value={pin}"


def _make_key(label: str, curve_oid: str = ED25519_OID) -> None:
    import pkcs11
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters

    token = pkcs11.lib(MODULE).get_token(token_label="annexa")
    with token.open(user_pin=PIN, rw=True) as session:
        if curve_oid == ED25519_OID:
            params = session.create_domain_parameters(KeyType.EC_EDWARDS, {
                Attribute.EC_PARAMS: encode_named_curve_parameters(curve_oid)}, local=True)
            params.generate_keypair(store=True, label=label,
                                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
        else:
            params = session.create_domain_parameters(KeyType.EC, {
                Attribute.EC_PARAMS: encode_named_curve_parameters(curve_oid)}, local=True)
            params.generate_keypair(store=True, label=label)


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A SoftHSM token `annexa` of its own, with the keys the tests sign with."""
    where = tmp_path_factory.mktemp("softhsm")
    (where / "tokens").mkdir()
    conf = where / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {where / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "annexa", "--pin",
                        PIN, "--so-pin", "5678"], check=True, capture_output=True, timeout=60)
        _make_key("annexa-signing")
        _make_key("annexa-signing-2")
        _make_key("not-ed25519", curve_oid="1.2.840.10045.3.1.7")  # P-256
        yield
    finally:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before


def _config(tmp_path: Path, fake: OktaFake, signing_key: str, **extra: object) -> Path:
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'annexa.db'}", "signing_key": signing_key,
        "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
        "sources": [{**fake.source(), "schedule": "1h"}], **extra}))
    return path


def _public_pem(label: str, path: Path) -> Path:
    key = Pkcs11Key(_uri(label)).public_key()
    path.write_bytes(key.public_bytes(serialization.Encoding.PEM,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_runs_sealed_by_a_key_in_a_token_verify_with_its_public_key(
        token, okta_fake, tmp_path, capsys):
    config = _config(tmp_path, okta_fake, _uri("annexa-signing"))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    code, out, err = annexa(capsys, config, "verify")  # the public half read from the token
    assert code == 0, err
    assert "ledger intact: 2 runs" in out
    pinned = _public_pem("annexa-signing", tmp_path / "token.pub")
    assert annexa(capsys, config, "verify", "--public-key", str(pinned))[0] == 0
    other = _public_pem("annexa-signing-2", tmp_path / "other.pub")
    assert annexa(capsys, config, "verify", "--public-key", str(other))[0] == 1
    assert_export_verifies(capsys, config, tmp_path / "bundle.zip")


def test_a_new_key_in_the_token_takes_over_with_the_old_one_cosigning(
        token, okta_fake, tmp_path, capsys):
    config = _config(tmp_path, okta_fake, _uri("annexa-signing"))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    code, _, err = annexa(capsys, config, "key", "rotate")
    assert code == 2 and "make the new Ed25519 key there" in err, err

    rotated = _config(tmp_path, okta_fake, _uri("annexa-signing-2"),
                      retired_signing_keys=[_uri("annexa-signing")])
    code, _, err = annexa(capsys, rotated, "collect")
    assert code == 0, err
    assert annexa(capsys, rotated, "collect")[0] == 0
    code, out, err = annexa(capsys, rotated, "verify")  # the newest key alone
    assert code == 0, out + err
    old = _public_pem("annexa-signing", tmp_path / "old.pub")
    assert annexa(capsys, rotated, "verify", "--public-key", str(old))[0] == 0, "pinned older"
    assert_export_verifies(capsys, rotated, tmp_path / "bundle.zip")



def test_a_key_changed_without_its_handover_fails_verify(token, okta_fake, tmp_path, capsys):
    config = _config(tmp_path, okta_fake, _uri("annexa-signing"))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    unannounced = _config(tmp_path, okta_fake, _uri("annexa-signing-2"))
    assert annexa(capsys, unannounced, "collect")[0] == 0
    code, out, _ = annexa(capsys, unannounced, "verify")
    assert code == 1 and "BROKEN" in out, out


def test_a_key_that_cannot_sign_is_refused_by_name(token, okta_fake, tmp_path, capsys):
    wrong_pin = _config(tmp_path, okta_fake, _uri("annexa-signing", pin="0000"))
    assert annexa(capsys, wrong_pin, "db", "upgrade")[0] == 0
    # A process of its own, as the service is: this one is logged in to the token already.
    done = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(wrong_pin),
                           "collect"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "object=annexa-signing" in done.stderr and "PinIncorrect" in done.stderr
    assert "0000" not in done.stderr, "the PIN is not shown"
    code, _, err = annexa(capsys, wrong_pin, "collect")
    assert code == 2 and "logged in with another PIN" in err, err

    p256 = _config(tmp_path, okta_fake, _uri("not-ed25519"))
    code, _, err = annexa(capsys, p256, "collect")
    assert code == 2 and "object=not-ed25519" in err, err

    missing = _config(tmp_path, okta_fake, "pkcs11:token=annexa;object=annexa-signing")
    code, _, err = annexa(capsys, missing, "collect")
    assert code == 2 and "module-path" in err, err


def test_a_kms_key_that_is_not_ed25519_is_refused_by_name(
        okta_fake, tmp_path, capsys, moto_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kms = boto3.client("kms", region_name="eu-west-1", endpoint_url=moto_url)
    arn = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    config = _config(tmp_path, okta_fake, arn)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, _, err = annexa(capsys, config, "collect")
    assert code == 2, err
    assert arn in err and "RSA_2048" in err and "ECC_NIST_EDWARDS25519" in err
    code, _, err = annexa(capsys, _config(tmp_path, okta_fake, "arn:aws:kms:eu-west-1:1:x"),
                          "collect")
    assert code == 2 and "not a KMS key ARN" in err, err
