"""The least-privilege policy shipped in config/ allows every call the connector makes, and
the emulator enforcing exactly that policy yields a complete, error-free collection."""

from __future__ import annotations

import json
from pathlib import Path

import requests

import connectors.aws as aws
from collector.demo.seed import seed_all
from collector.model import CollectionError, Resource
from tests.helpers import REGIONS, emulator_client

POLICY = Path(__file__).parent.parent / "config" / "aws" / "annexa-readonly-policy.json"

# API operation names whose IAM action is named differently.
ACTION_OF = {
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetBucketPolicy"): "s3:GetBucketPolicy",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
}
SERVICE_PREFIX = {"monitoring": "cloudwatch", "s3control": "s3", "sso-admin": "sso"}
# moto authorises some S3 calls under other action names than AWS does (GetBucketEncryption as
# s3:ListBucket, GetPublicAccessBlock under its API name); the enforced test adds them.
MOTO_ACTION_NAMES = ["s3:ListBucket", "s3:GetPublicAccessBlock"]


def _actions() -> set[str]:
    statements = json.loads(POLICY.read_text())["Statement"]
    return {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}


def test_policy_covers_every_call_made_on_the_seeded_account(moto_url):
    seed_all(emulator_client(moto_url), REGIONS)
    calls: set[tuple[str, str]] = set()
    settings = aws.Settings(regions=REGIONS, endpoint_url=moto_url, max_attempts=1)
    items = list(aws.collect(settings, lambda svc, op, _s, _r: calls.add((svc, op))))
    assert not [i for i in items if isinstance(i, CollectionError)]
    needed = set()
    for service, operation in calls:
        if service == "sts" and operation == "GetCallerIdentity":
            continue  # needs no permission
        needed.add(ACTION_OF.get((service, operation),
                                 f"{SERVICE_PREFIX.get(service, service)}:{operation}"))
    assert needed - _actions() == set(), "calls the shipped policy does not allow"


def test_collection_under_exactly_that_policy_has_no_errors(moto_url, monkeypatch):
    client = emulator_client(moto_url)
    seed_all(client, REGIONS)
    iam = client("iam", REGIONS[0])
    iam.create_user(UserName="annexa-collector")
    policy = json.loads(POLICY.read_text())
    policy["Statement"][0]["Action"] += MOTO_ACTION_NAMES
    iam.put_user_policy(UserName="annexa-collector", PolicyName="annexa",
                        PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="annexa-collector")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    requests.post(f"{moto_url}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        items = list(aws.collect(aws.Settings(regions=REGIONS, endpoint_url=moto_url,
                                              max_attempts=1)))
    finally:
        requests.post(f"{moto_url}/moto-api/reset-auth", data=b"inf", timeout=10)
    errors = [i for i in items if isinstance(i, CollectionError)]
    # moto 5.2 rejects the signature of GuardDuty's REST calls whenever it enforces IAM, so
    # only that service may fail here, and only for that reason.
    assert [e for e in errors if not (e.service == "guardduty"
                                      and "SignatureDoesNotMatch" in e.message)] == []
    fetch_errors = [(i.key, i.data["_errors"]) for i in items
                    if isinstance(i, Resource) and "_errors" in i.data
                    and set(i.data["_errors"]) != {"KmsKeyId"}]
    assert fetch_errors == []
    assert sum(isinstance(i, Resource) for i in items) > 50
