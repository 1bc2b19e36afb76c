"""Redaction: secret fields and secret-shaped values are replaced by a fixed marker, only the
secret part of a string goes, ordinary identifiers stay, and the fast path never skips what
redact() would change."""

from __future__ import annotations

import base64
import json
import random

import pytest

from collector.canonical import REDACTED, canonical, might_hold_secrets, redact, redacted_canonical

SECRETS = [
    {"SecretAccessKey": "AKIA/abc"},
    {"master_user_password": "hunter2"},
    {"db-Password": "x"},
    {"ClientSecret": "s"},
    {"config": {"ApiKey": "k"}},
    {"Tags": [{"Key": "DB_PASSWORD", "Value": "t"}]},
    {"Env": [{"Name": "session-token", "Value": "t"}]},
    {"Tags": [{"Key": "API_TOKEN", "Value": "t"}]},
    {"settings": {"github_token": "ghp_x"}},
    {"Environment": {"Variables": {"A": "1"}}},
    {"UserData": "IyEvYmluL2Jhc2g="},
    {"dsn": "host=db;password=s3cret;user=app"},
    {"url": "https://x/?pwd=abc&y=1"},
    {"note": "TOKEN=abc"},
    {"pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"},
    {"Password_": "trailing separator"},
]


@pytest.mark.parametrize("data", SECRETS, ids=lambda d: json.dumps(d)[:40])
def test_secrets_are_seen_and_redacted(data):
    text = canonical(data).decode()
    assert might_hold_secrets(text)
    clean, body = redacted_canonical(data)
    assert clean != data and REDACTED.encode() in body


def test_names_that_only_contain_a_secret_word_take_the_fast_path():
    # The credential report of every IAM user: password fields that hold no password.
    data = {"credential_report": {"password_enabled": True, "password_last_used": "2026-11-20",
                                  "password_last_changed": None, "mfa_active": False},
            "Tags": [{"Key": "token_type", "Value": "bearer"}], "secret_arn_count": 2}
    text = canonical(data).decode()
    assert not might_hold_secrets(text)
    assert redact(data) is data


NAMES = ["password", "Password", "pass_word", "passwordEnabled", "secret", "client-secret",
         "secretName", "token", "tokenType", "apiKey", "api_key_id", "environment", "Key", "Value",
         "Name", "userData", "credentials", "privateKey", "private_key_id", "region", "arn"]
VALUES = ["x", "", None, 3, True, "password=1", "pwd=2", "a token=b", "secret", "API_TOKEN",
          "db_password", "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----", "plain",
          "postgres://u:p@h/db", "https://h/x", "AKIA" + "Q" * 16, "ghp_" + "a1" * 18,
          '{"secret": "s"}', "aws_secret_access_key = k", "arn:aws:secretsmanager:r:1:secret:n",
          "x;AccountKey=k==", "eyJ" + "a" * 10 + ".eyJ" + "b" * 10 + ".c", "token_type: bearer"]


def _random_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth > 0 and roll < 0.3:
        return {rng.choice(NAMES): _random_value(rng, depth - 1) for _ in range(rng.randint(1, 4))}
    if depth > 0 and roll < 0.4:
        return [_random_value(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(VALUES)


def test_the_fast_path_never_skips_what_redact_would_change():
    rng = random.Random(27001)
    skipped = changed = 0
    for _ in range(5000):
        data = _random_value(rng, 3)
        if redact(data) is not data:
            changed += 1
            assert might_hold_secrets(canonical(data).decode()), data
        elif not might_hold_secrets(canonical(data).decode()):
            skipped += 1
    assert changed > 500 and skipped > 500  # both sides of the predicate were exercised


# --- secret-shaped values, whatever holds them ----------------------------------------------
# Tokens are assembled here rather than written out, so that the repository holds none.

def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


AWS_ID = "AKIA" + "Z7Q2XK4M" * 2
AWS_SESSION_ID = "ASIA" + "J3R5T7V9" * 2
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+" + "bPxRfiCY0" * 2
JWT = ".".join((_b64url({"alg": "HS256", "typ": "JWT"}),
                _b64url({"sub": "1234567890", "name": "svc"}), "SflKxwRJSMeKKF2QT4fwpMeJf36P"))
GITHUB = {prefix: prefix + "aB3dE6gH9j" * 3 + "kLmNoP" for prefix in
          ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")}
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" * 2 + "ab_" + "Zx9Yw8Vu7T" * 5 + "s6R5q4P3o"
SLACK_BOT = "xoxb-" + "1234567890" + "12-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_USER = "xoxp-" + "2234567890" + "12-2234567890123-" + "bCdEfGhIjKlMnOpQrStUvWxY"
SLACK_APP = "xapp-1-A0" + "12345678" + "9-1234567890123-" + "abcdef0123456789" * 4
SLACK_HOOK_PATH = "T0" + "1234567" + "8/B0" + "12345678/" + "XXXXXXXXXXXXXXXXXXXXXXXX"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
STRIPE_RESTRICTED = "rk_live_" + "51H8sXyZaBcDeFgHiJkLmNo"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
GITLAB = "glpat-" + "xYz12-AbC34_dEf56gHi"
ENTRA_SECRET = "abc8Q~" + "Xy1_Zw2.Vu3~Ts4-Rq5" + "Po6Nm7Lk8Ji9Hg0"
AZURE_KEY = "Zm9vYmFyYmF6cXV4" * 5 + "q83ZZ=="
PEM_BODY = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MlTrV\nq8Ac3L+uiXL5ZWz0Sqb7bw=="
PEM_KINDS = ("RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY",
             "ENCRYPTED PRIVATE KEY", "PGP PRIVATE KEY BLOCK")


def _pem(kind: str) -> str:
    return f"-----BEGIN {kind}-----\n{PEM_BODY}\n-----END {kind}-----"


# (text, what must go, what must stay)
VALUE_SECRETS: list[tuple[str, list[str], list[str]]] = [
    (f"aws_secret_access_key={AWS_ID}", [AWS_ID], ["aws_secret_access_key="]),
    (f"key {AWS_ID} for ci", [AWS_ID], ["key ", " for ci"]),
    (f"{AWS_SESSION_ID}", [AWS_SESSION_ID], []),
    (f"{AWS_ID},{AWS_SECRET}", [AWS_ID, AWS_SECRET], [","]),
    (f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
     [AWS_ID, AWS_SECRET], ["[default]\naws_access_key_id = ", "\naws_secret_access_key = "]),
    (f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", [AWS_SECRET], ["export AWS_SECRET_ACCESS_KEY="]),
    ("postgres://app:Db-Pa55word@db.internal:5432/prod", ["Db-Pa55word"],
     ["postgres://app:", "@db.internal:5432/prod"]),
    ("mongodb+srv://admin:s3cr%40t@cluster0.example.net/?retryWrites=true", ["s3cr%40t"],
     ["mongodb+srv://admin:", "@cluster0.example.net/?retryWrites=true"]),
    ("redis://:c4che-pass@cache:6379/0", ["c4che-pass"], ["redis://:", "@cache:6379/0"]),
    ("jdbc:mysql://report:Rep0rt!@10.0.0.5/sales", ["Rep0rt!"], ["@10.0.0.5/sales"]),
    *((_pem(kind), [PEM_BODY], [f"-----BEGIN {kind}-----", f"-----END {kind}-----"])
      for kind in PEM_KINDS),
    (f"#!/bin/sh\ncat > /etc/key <<EOF\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n",
     [PEM_BODY], ["#!/bin/sh\ncat > /etc/key <<EOF\n"]),
    *((f"GH_TOKEN={token}", [token], []) for token in GITHUB.values()),
    *((f"deploy with {token} today", [token], ["deploy with ", " today"])
      for token in GITHUB.values()),
    (GITHUB_PAT, [GITHUB_PAT], []),
    (GITLAB, [GITLAB], []),
    (f"bot {SLACK_BOT}", [SLACK_BOT], ["bot "]),
    (SLACK_USER, [SLACK_USER], []),
    (SLACK_APP, [SLACK_APP], []),
    (f"https://hooks.slack.com/services/{SLACK_HOOK_PATH}", [SLACK_HOOK_PATH],
     ["https://hooks.slack.com/services/"]),
    (f"stripe: {STRIPE}", [STRIPE], []),
    (STRIPE_RESTRICTED, [STRIPE_RESTRICTED], []),
    (f"Authorization: Bearer {JWT}", [JWT], ["Authorization: Bearer "]),
    (f"https://maps.example.com/api?key={GOOGLE}&v=3", [GOOGLE], ["https://maps.example.com"]),
    (ENTRA_SECRET, [ENTRA_SECRET], []),
    (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={AZURE_KEY};"
     "EndpointSuffix=core.windows.net", [AZURE_KEY],
     ["DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=",
      ";EndpointSuffix=core.windows.net"]),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;"
     "SharedAccessKey=Qk3x9+vT2mN8=", ["Qk3x9+vT2mN8="], ["SharedAccessKeyName=root;"]),
    ("https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&sr=b&sig=Qm9v%2Bc2ln&se=2027",
     ["Qm9v%2Bc2ln"], ["https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02", "&se=2027"]),
    ("https://b.s3.amazonaws.com/k?X-Amz-Security-Token=IQoJb3JpZ2luX2VjE&"
     "X-Amz-Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
     ["IQoJb3JpZ2luX2VjE", "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"],
     ["https://b.s3.amazonaws.com/k?"]),
    ("host=db;password=s3cret;user=app", ["s3cret"], ["host=db;password=", ";user=app"]),
    ("#cloud-config\nusers:\n  - name: app\n    passwd: Hunter2x\nsecret: topsecret\n",
     ["Hunter2x", "topsecret"], ["#cloud-config\nusers:\n  - name: app\n    passwd: "]),
    ("export DB_PASSWORD='my long pass' API_TOKEN=abc123", ["my long pass", "abc123"],
     ["export DB_PASSWORD='", "' API_TOKEN="]),
    ('{"client_secret": "cs-1", "Passphrase" : "open sesame", "spring.datasource.password":'
     ' "x9"}', ["cs-1", "open sesame", '"x9"'], ['{"client_secret": "', '"Passphrase" : "']),
    ("run --db-password=pw1 --api-key pw2", ["pw1"], ["run --db-password="]),
]


@pytest.mark.parametrize(("text", "gone", "kept"), VALUE_SECRETS,
                         ids=lambda v: repr(v)[:30] if isinstance(v, str) else None)
def test_secret_shaped_values_lose_only_the_secret(text, gone, kept):
    data = {"Description": text}
    assert might_hold_secrets(canonical(data).decode())
    clean, body = redacted_canonical(data)
    out = clean["Description"]
    assert REDACTED in out
    for secret in gone:
        assert secret not in out and secret.encode() not in body, (secret, out)
    for part in kept:
        assert part in out, (part, out)
    assert redacted_canonical(data)[1] == body, "redaction is deterministic"
    assert redact(clean) == clean, "redacting again changes nothing"


def test_a_secret_key_name_can_be_the_sibling_field_s_value():
    # AWS tags are Key/Value lists, environment lists Name/Value, some APIs key/value.
    data = {"Tags": [{"Key": "aws_secret_access_key", "Value": AWS_SECRET},
                     {"Key": "DATABASE_URL", "Value": "postgres://u:Pg-Pass@db/x"},
                     {"Key": "passphrase", "Value": "open sesame"},
                     {"Key": "note", "Value": f"aws_secret_access_key={AWS_ID}"},
                     {"Key": "Name", "Value": "web-1"}],
            "Env": [{"Name": "STRIPE_KEY", "Value": STRIPE},
                            {"Name": "private_key", "Value": "k"}],
            "labels": [{"key": "client-secret", "value": "cs"}, {"key": "team", "value": "a"}]}
    clean = redact(data)
    assert clean["Tags"] == [{"Key": "aws_secret_access_key", "Value": REDACTED},
                             {"Key": "DATABASE_URL", "Value": f"postgres://u:{REDACTED}@db/x"},
                             {"Key": "passphrase", "Value": REDACTED},
                             {"Key": "note", "Value": f"aws_secret_access_key={REDACTED}"},
                             {"Key": "Name", "Value": "web-1"}]
    assert clean["Env"] == [{"Name": "STRIPE_KEY", "Value": REDACTED},
                                    {"Name": "private_key", "Value": REDACTED}]
    assert clean["labels"] == [{"key": "client-secret", "value": REDACTED},
                               {"key": "team", "value": "a"}]


def test_secrets_nested_in_dicts_lists_and_documents_in_strings():
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "AllowCi", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
        "Condition": {"StringEquals": {"aws:UserAgent": f"ci {GITHUB['ghs_']}",
                                       "s3:prefix": "x", "password": "pw-in-json"}}}]})
    data = {"tags": {"DATABASE_URL": "mysql://root:R00t@db:3306/app", "env": "prod"},
            "levels": [[{"deep": [f"token {JWT}"]}]],
            "PolicyDocument": policy,
            "UserData": base64.b64encode(b"#!/bin/sh\necho hi").decode(),
            "Escaped": json.dumps({"nested": json.dumps({"api_key": "k-9"})})}
    clean, body = redacted_canonical(data)
    assert clean["tags"] == {"DATABASE_URL": f"mysql://root:{REDACTED}@db:3306/app",
                             "env": "prod"}
    assert clean["levels"] == [[{"deep": [f"token {REDACTED}"]}]]
    doc = json.loads(clean["PolicyDocument"])
    condition = doc["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {"aws:UserAgent": f"ci {REDACTED}", "s3:prefix": "x",
                         "password": REDACTED}
    assert doc["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert clean["UserData"] == REDACTED
    assert json.loads(json.loads(clean["Escaped"])["nested"]) == {"api_key": REDACTED}
    for secret in ("R00t", JWT, GITHUB["ghs_"], "pw-in-json", "k-9"):
        assert secret.encode() not in body


def test_the_marker_does_not_depend_on_the_secret():
    # A rotated secret gives the same evidence: digests stay stable across runs.
    one = {"Tags": [{"Key": "url", "Value": "postgres://u:first@h/db"}], "t": GITHUB["ghp_"]}
    two = {"Tags": [{"Key": "url", "Value": "postgres://u:second@h/db"}],
           "t": "ghp_" + "Zz9" * 12}
    assert redacted_canonical(one)[1] == redacted_canonical(two)[1]


# Evidence that checks read and that must come through untouched.
ORDINARY = [
    {"Arn": "arn:aws:iam::123456789012:user/alice", "UserId": "AIDA" + "J7K3L5M7N9P2Q4R6",
     "RoleId": "AROA" + "X2Y4Z6A8B0C2D4E6"},
    {"SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf",
     "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/0f8fad5b-d9cb-469f-a165-70867728950e",
     "KeyName": "deploy-key", "KeyId": "mrk-1234abcd12ab34cd56ef1234567890ab"},
    {"PasswordPolicy": {"MinimumPasswordLength": 14, "RequireSymbols": True,
                        "AllowUsersToChangePassword": True, "ExpirePasswords": False,
                        "MaxPasswordAge": 90, "PasswordReusePrevention": 24,
                        "HardExpiry": False}},
    {"token_type": "bearer", "password_enabled": True, "password_last_used": "2026-11-20",
     "passwordCredentials": [{"keyId": "0f8fad5b-d9cb-469f-a165-70867728950e",
                              "endDateTime": "2027-01-01T00:00:00Z", "hint": "abc",
                              "displayName": "ci"}],
     "passwordPolicies": "DisablePasswordExpiration", "private_key_id": "a1b2"},
    {"digest": "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "etag": "d41d8cd98f00b204e9800998ecf8427e",
     "commit": "3f786850e387550fdab836ed7e6dc881de23001b",
     "ImageId": "ami-0abcdef1234567890", "uuid": "123e4567-e89b-12d3-a456-426614174000"},
    {"PolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"},
                      "StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}]}),
     "blob": base64.b64encode(json.dumps({"version": "1", "purpose": "audit"}).encode()).decode(),
     "Statement": [{"Sid": "AllowKeyName", "Condition": {"StringLike": {
         "aws:PrincipalArn": "arn:aws:iam::*:role/token-*"}}}]},
    {"Endpoint": "https://sts.us-east-1.amazonaws.com", "host": "db.internal:5432",
     "Location": "https://example.com/path?x=1&page=2", "Name": "disk-sk-prod-eu-west-1",
     "Description": "rotate the token monthly; see https://wiki.example.com/secrets",
     "Email": "ops@example.com", "LoginUrl": "https://signin.example.com/account:42"},
]


@pytest.mark.parametrize("data", ORDINARY, ids=lambda d: next(iter(d)))
def test_ordinary_values_are_not_redacted(data):
    assert redact(data) is data
    clean, body = redacted_canonical(data)
    assert clean is data and REDACTED.encode() not in body


FRAGMENTS = [secret for _, gone, _ in VALUE_SECRETS for secret in gone] + [
    "password", "Passphrase", "DB_PASSWORD", "aws_secret_access_key", "token", "secret", "=",
    ": ", '": "', "'", '"', "\\", "\n", "\t", " ", "://", "u:p@", "@", ";", "&", "?", "AccountKey=",
    "sig=", "Q~", "eyJ", "AKIA", "arn:aws:iam::1:user/x", "İ", "é", "true", "-----BEGIN",
    "PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "[REDACTED]"]


def test_the_fast_path_never_skips_a_secret_shaped_value():
    # Strings spliced from secrets, names, separators and quotes, alone and inside JSON text.
    rng = random.Random(2022)
    changed = 0
    for _ in range(3000):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 6)))
        for data in (text, {"Description": text}, [json.dumps({"d": text})]):
            if redact(data) != data:
                changed += 1
                assert might_hold_secrets(canonical(data).decode()), data
    assert changed > 1000
