"""Redaction's fast path: data it declares free of secrets must be data redact() leaves alone."""

from __future__ import annotations

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
VALUES = ["x", "", None, 3, "password=1", "pwd=2", "a token=b", "secret", "API_TOKEN",
          "db_password", "-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----", "plain"]


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
