"""Evidence that whoever controls the audited account wrote: one resource that cannot be
stored or judged fails alone, and data that could not be read never hides a failure."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from bench.synthetic import SCOPE
from checks.registry import load_all
from collector import migrate
from collector.chain import RUNS, verify
from collector.config import SourceConfig
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.model import FETCH_ERRORS, CollectionError, Resource
from collector.pipeline import collect_source
from tests.helpers import annexa, controls_json, emulator_client, write_config

ACCOUNT = SCOPE.id
POLICY_KEY = f"arn:aws:iam::{ACCOUNT}:password-policy"
STRONG = {"MinimumPasswordLength": 16, "PasswordReusePrevention": 24}


def _nested(depth: int, leaf: object, as_list: bool = False) -> object:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


def _bucket(name: str, **extra: object) -> Resource:
    return SCOPE.resource("aws.s3.bucket", f"arn:aws:s3:::{name}", {
        "Name": name, "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms"}}]}, "versioning": {"Status": "Enabled"}, **extra},
        "us-east-1")


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


def _collect(engine: sa.Engine, tmp_path, items: list[object]):  # type: ignore[no-untyped-def]
    return collect_source(engine, SourceConfig(name="aws-prod", kind="aws"),
                          load_or_create_signer(tmp_path / "signing.key"), items=items,
                          writer="inline")


HOSTILE = {
    "deep-dict": lambda: _bucket("deep-dict", Tags=_nested(10_000, "x")),
    "deep-list": lambda: _bucket("deep-list", policy=_nested(6_000, 1, as_list=True)),
    "not-json": lambda: _bucket("not-json", Tags=[object()]),
    "surrogate": lambda: _bucket("surrogate", Tags=[{"Key": "k", "Value": "bad \ud800 text"}]),
    "nul-key": lambda: SCOPE.resource("aws.s3.bucket", "arn:aws:s3:::nul\x00key", {"Name": "n"},
                                      "us-east-1"),
    "long-key": lambda: SCOPE.resource("aws.s3.bucket", "arn:aws:s3:::" + "k" * 3000,
                                       {"Name": "long"}, "us-east-1"),
}


@pytest.mark.parametrize("variant", sorted(HOSTILE))
def test_a_resource_that_cannot_be_stored_fails_alone(engine, tmp_path, variant: str) -> None:
    hostile = HOSTILE[variant]()
    out = _collect(engine, tmp_path, [SCOPE, _bucket("before"), hostile, _bucket("after")])
    assert out.status == "partial", out.message
    [error] = out.errors
    assert error.service == "annexa" and "not stored" in error.message
    assert error.kinds == ("aws.s3.bucket",)
    with engine.connect() as conn:
        stored = set(conn.scalars(sa.text("SELECT key FROM resource_versions")))
        judged = conn.execute(sa.text(
            "SELECT subject, status FROM check_results WHERE check_id = "
            "'aws.s3.bucket_default_encryption_enabled'")).all()
        run_errors = list(conn.scalars(sa.text("SELECT message FROM collection_errors")))
    assert stored == {"arn:aws:s3:::before", "arn:aws:s3:::after"}
    statuses = dict(judged)
    assert statuses["arn:aws:s3:::before"] == statuses["arn:aws:s3:::after"] == "pass"
    assert statuses[error.key] == "error", "its checks could not judge it: error, never pass"
    assert run_errors == [error.message]
    assert verify(engine, load_or_create_signer(tmp_path / "signing.key").public).ok


def test_an_earlier_version_stays_in_force_while_the_resource_cannot_be_stored(
        engine, tmp_path) -> None:
    plain = _bucket("victim", encryption=None)  # fails the encryption check
    first = _collect(engine, tmp_path, [SCOPE, plain])
    key = plain.key
    second = _collect(engine, tmp_path, [SCOPE, _bucket("victim", encryption=None,
                                                        Tags=_nested(5_000, "x"))])
    assert (first.status, second.status) == ("complete", "partial")
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT valid_from_run, valid_to_run FROM "
                                        "resource_versions WHERE key = :k"), {"k": key}).all()
        result = conn.execute(sa.text(
            "SELECT status, reason, evidence FROM check_results WHERE subject = :k AND "
            "check_id = 'aws.s3.bucket_default_encryption_enabled' AND valid_to_run IS NULL"),
            {"k": key}).one()
        first_digest = conn.scalar(sa.text("SELECT digest FROM resource_versions WHERE "
                                           "key = :k"), {"k": key})
    assert versions == [(first.run_id, None)], "the first version is not closed"
    assert result.status == "fail", "the failure stays"
    assert json.loads(result.evidence) == [first_digest], "on the evidence it rested on"
    assert result.reason.startswith("no default encryption (earlier evidence; not judged again:")
    assert "nested too deeply" in result.reason
    assert second.stats.failures_kept >= 1


@pytest.mark.parametrize("how", ["detail", "listing"])
def test_a_failure_stays_when_its_data_cannot_be_read_again(engine, tmp_path, how) -> None:
    weak = SCOPE.resource("aws.iam.password_policy", POLICY_KEY, {"policy": None})
    first = _collect(engine, tmp_path, [SCOPE, weak])
    if how == "detail":
        unread = [SCOPE, SCOPE.resource("aws.iam.password_policy", POLICY_KEY, {
            FETCH_ERRORS: {"policy": "Could not connect to the endpoint URL"}})]
    else:
        unread = [SCOPE, CollectionError(ACCOUNT, "*", "iam", ("aws.iam.password_policy",
                                                                "aws.cloudtrail.trail"),
                                         "Could not connect to the endpoint URL")]
    second = _collect(engine, tmp_path, unread)
    assert first.status == "complete" and second.status in ("complete", "partial")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT check_id, subject, status, evidence, valid_from_run FROM check_results "
            "WHERE valid_to_run IS NULL AND check_id IN ('aws.iam.password_policy_strong', "
            "'aws.cloudtrail.multi_region_trail_enabled')")).all()
        first_digest = conn.scalar(sa.text("SELECT digest FROM resource_versions WHERE key = :k "
                                           "AND valid_from_run = :r"),
                                   {"k": POLICY_KEY, "r": first.run_id})
    kept = {(r.check_id, r.subject): r for r in rows}
    policy = kept[("aws.iam.password_policy_strong", POLICY_KEY)]
    # A detail that could not be read: the failure is carried, saying why. A listing that
    # could not be read: the resource's results stay as they were.
    since = second.run_id if how == "detail" else first.run_id
    assert (policy.status, policy.valid_from_run) == ("fail", since)
    assert json.loads(policy.evidence) == [first_digest], "the earlier evidence is cited"
    trail = kept[("aws.cloudtrail.multi_region_trail_enabled", SCOPE.key)]
    assert trail.status == "fail", "no trail before; unreadable now: still failing"
    third = _collect(engine, tmp_path, unread)
    assert third.stats.new_results == 0, "the same gap again changes nothing"
    assert verify(engine, load_or_create_signer(tmp_path / "signing.key").public).ok


def test_a_pass_becomes_unknown_when_its_data_cannot_be_read(engine, tmp_path) -> None:
    _collect(engine, tmp_path, [SCOPE, SCOPE.resource("aws.iam.password_policy", POLICY_KEY,
                                                      {"policy": STRONG})])
    _collect(engine, tmp_path, [SCOPE, SCOPE.resource("aws.iam.password_policy", POLICY_KEY, {
        FETCH_ERRORS: {"policy": "AccessDenied: not allowed"}})])
    with engine.connect() as conn:
        status = conn.scalar(sa.text(
            "SELECT status FROM check_results WHERE valid_to_run IS NULL AND subject = :k AND "
            "check_id = 'aws.iam.password_policy_strong'"), {"k": POLICY_KEY})
        runs = conn.execute(sa.select(RUNS.c.status)).all()
    assert status == "error" and len(runs) == 2


def test_a_bucket_policy_nested_5000_deep_does_not_stop_collection(
        tmp_path, database_url, moto_url, capsys) -> None:
    s3 = emulator_client(moto_url)("s3", "us-east-1")
    s3.create_bucket(Bucket="deep-policy")
    s3.create_bucket(Bucket="open-policy")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    s3.put_bucket_policy(Bucket="deep-policy", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{**statement,
                                               "Resource": "arn:aws:s3:::deep-policy/*",
                                               "Condition": "DEEP"}]}).replace('"DEEP"', deep))
    s3.put_bucket_policy(Bucket="open-policy", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{**statement,
                                               "Resource": "arn:aws:s3:::open-policy/*"}]}))
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    annexa(capsys, config, "db", "upgrade")
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    checks = {c["id"]: c for control in controls_json(capsys, config)
              for c in control["checks"]}
    public = checks["aws.s3.bucket_policy_not_public"]
    assert public["failing_resources"] == ["arn:aws:s3:::open-policy"]
    assert any(e.startswith("arn:aws:s3:::deep-policy: policy could not be collected: policy is "
                            "nested too deeply")
               for e in public["errors"]), public["errors"]
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0, out
