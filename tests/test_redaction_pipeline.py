"""Secrets that whoever controls the audited account writes into tags, descriptions and policies
are redacted at collection: neither the stored blobs, `annexa snapshot` nor an `annexa export`
bundle holds them, and what the checks read comes through."""

from __future__ import annotations

import base64
import json
import zipfile

import sqlalchemy as sa

from collector.cli import main
from collector.schema import now
from collector.store import decompress
from tests.helpers import annexa, emulator_client, write_config

REGION = "us-east-1"


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


# Assembled at run time, so that the repository holds no token.
AWS_ID = "AKIA" + "R4T6Y8U2" * 2
AWS_SECRET = "k7Hq2Wz9/Xp4Lm8+" + "Vb3Nc6Rt1Ys5" * 2
DB_PASSWORD = "Db-" + "Pa55word" + "91"
PASSPHRASE = "correct horse " + "battery staple"
GITHUB = "ghp_" + "Qw3Er5Ty7U" * 3 + "i9Op1A"
SLACK = "xoxb-" + "2345678901" + "23-2345678901234-" + "ZyXwVuTsRqPoNmLkJiHgFeDc"
STRIPE = "sk_live_" + "9fK2LmQ8rT4vW6xZ1bN3cD5e"
JWT = ".".join((_b64url({"alg": "HS256", "typ": "JWT"}), _b64url({"sub": "ci", "n": 7}),
                "Xb7Yc9Zd1Ae3Bf5Cg7Dh9Ei1Fj3"))
PEM_BODY = "MIIBOgIBAAJBAK" + "j34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu" + "KUpRKfFLfRYC"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
SECRETS = (AWS_ID, AWS_SECRET, DB_PASSWORD, PASSPHRASE, GITHUB, SLACK, STRIPE, JWT, PEM_BODY)


def _seed(moto_url: str) -> dict[str, str]:
    client = emulator_client(moto_url)
    iam, ec2 = client("iam", REGION), client("ec2", REGION)
    s3, kms = client("s3", REGION), client("kms", REGION)
    user = iam.create_user(UserName="carol", Tags=[
        {"Key": "aws_secret_access_key", "Value": AWS_SECRET},
        {"Key": "DATABASE_URL", "Value": f"postgres://app:{DB_PASSWORD}@db.internal:5432/prod"},
        {"Key": "passphrase", "Value": PASSPHRASE},
        {"Key": "note", "Value": f"aws_secret_access_key={AWS_ID}"},
        {"Key": "team", "Value": "payments"},
    ])["User"]["Arn"]
    iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True,
                                       AllowUsersToChangePassword=True,
                                       PasswordReusePrevention=24)
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, TagSpecifications=[{
        "ResourceType": "volume", "Tags": [{"Key": "deploy", "Value": f"token {GITHUB}"},
                                           {"Key": "hooks", "Value": SLACK}]}])["VolumeId"]
    ec2.create_security_group(GroupName="billing", Description=f"billing key {STRIPE}",
                              TagSpecifications=[{"ResourceType": "security-group", "Tags": [
                                  {"Key": "Name", "Value": "billing"}]}])
    s3.create_bucket(Bucket="ci-artifacts")
    s3.put_bucket_policy(Bucket="ci-artifacts", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "CiOnly", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::ci-artifacts/*",
            "Condition": {"StringEquals": {"aws:UserAgent": f"Bearer {JWT}"}}}]}))
    kms.create_key(Description=f"signing; backup copy:\n{PEM}")
    return {"user": user, "volume": volume}


def _blobs(database_url: str) -> list[bytes]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [decompress(body) for (body,) in conn.execute(sa.text(
                "SELECT body FROM blobs WHERE body IS NOT NULL"))]
    finally:
        engine.dispose()


def _assert_no_secret(where: str, data: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in data, (secret, where)


def test_collected_secrets_reach_neither_the_store_nor_snapshot_nor_bundle(
        tmp_path, database_url, moto_url, capsys):
    seeded = _seed(moto_url)
    config = write_config(tmp_path, database_url, moto_url, regions=[REGION])
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    start = now()
    assert main(["--config", str(config), "collect"]) == 0
    end = now()

    blobs = _blobs(database_url)
    for body in blobs:
        _assert_no_secret("blob", body)
    documents = [json.loads(body) for body in blobs]
    (carol,) = [d for d in documents if d.get("Arn") == seeded["user"]]
    assert {t["Key"]: t["Value"] for t in carol["Tags"]} == {
        "aws_secret_access_key": "[REDACTED]",
        "DATABASE_URL": "postgres://app:[REDACTED]@db.internal:5432/prod",
        "passphrase": "[REDACTED]", "note": "aws_secret_access_key=[REDACTED]",
        "team": "payments"}
    (volume,) = [d for d in documents if d.get("VolumeId") == seeded["volume"]]
    assert {t["Key"]: t["Value"] for t in volume["Tags"]} == {
        "deploy": "token [REDACTED]", "hooks": "[REDACTED]"}
    (policy,) = [d["policy"] for d in documents
                 if d.get("Name") == "ci-artifacts" and d.get("policy")]
    (statement,) = policy["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:UserAgent": "Bearer [REDACTED]"}}
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    # What the password-policy check reads stays a number.
    (password,) = [d["policy"] for d in documents if "MinimumPasswordLength" in d.get(
        "policy", {})]
    assert (password["MinimumPasswordLength"], password["PasswordReusePrevention"],
            password["AllowUsersToChangePassword"]) == (14, 24, True)

    code, out, err = annexa(capsys, config, "snapshot", "--format", "json")
    assert code == 0, err
    _assert_no_secret("snapshot", out.encode())
    snapshot = json.loads(out)
    judged = {(k["id"], r["subject"]): r["status"] for c in snapshot["controls"]
              for k in c["checks"] for r in k["results"]}
    password_key = f"arn:aws:iam::{carol['Arn'].split(':')[4]}:password-policy"
    assert judged[("aws.iam.password_policy_strong", password_key)] == "pass"

    bundle = tmp_path / "bundle.zip"
    code, _, err = annexa(capsys, config, "export", "--from", start.isoformat(),
                          "--to", end.isoformat(), "--out", str(bundle))
    assert code == 0, err
    with zipfile.ZipFile(bundle) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    assert any(name.startswith("evidence/") for name in members)
    for name, body in members.items():
        _assert_no_secret(name, body)
    assert b"postgres://app:[REDACTED]@db.internal:5432/prod" in b"".join(members.values())
