"""S3, CloudTrail, AWS Config and GuardDuty against a seeded moto server."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

import connectors.aws
from checks.registry import REGISTRY, ScopeView, load_all
from collector.demo import seed_storage
from collector.demo.seed import ACCOUNT
from collector.evaluate import Outcome, evaluate_all
from collector.model import Resource
from connectors.aws import Settings
from tests.helpers import assert_failures_are_planted

REGIONS = ["us-east-1", "eu-west-1"]
KINDS = {
    "aws.s3.bucket",
    "aws.s3.account_public_access_block",
    "aws.cloudtrail.trail",
    "aws.config.region",
    "aws.guardduty.region",
}
CHECKS = {
    seed_storage.ENCRYPTED,
    seed_storage.BLOCKED,
    seed_storage.NOT_PUBLIC,
    seed_storage.TLS,
    seed_storage.VERSIONED,
    seed_storage.LOGGED,
    seed_storage.ACCOUNT_BLOCK,
    seed_storage.MULTI_REGION_TRAIL,
    seed_storage.TRAIL_LOGGING,
    seed_storage.TRAIL_VALIDATION,
    seed_storage.TRAIL_KMS,
    seed_storage.CONFIG,
    seed_storage.GUARDDUTY,
}
# The sample organisation has no good multi-region trail, and the account block is a single
# resource that the sample leaves off: their passing side is shown by the fixes below.
FAIL_ONLY = {seed_storage.MULTI_REGION_TRAIL, seed_storage.ACCOUNT_BLOCK}
ACCOUNT_KEY = seed_storage.ACCOUNT_KEY
TRAIL = f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/acme-all-regions"
WEBSITE = seed_storage.bucket_arn("acme-public-website")

Calls = Counter[tuple[str, str]]


def _client(url: str) -> Any:
    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=url)
    return client


def _collect(url: str, regions: list[str] = REGIONS) -> tuple[list[Any], Calls]:
    calls: Calls = Counter()

    def observe(service: str, operation: str, status: int, retries: int) -> None:
        calls[(service, operation)] += 1

    items = list(connectors.aws.collect(Settings(regions=regions, endpoint_url=url), observe))
    return items, calls


@pytest.fixture
def seeded(moto_url: str) -> tuple[dict[str, set[str]], list[Any], Calls]:
    planted: dict[str, set[str]] = {}
    seed_storage.seed(_client(moto_url), REGIONS, planted)
    items, calls = _collect(moto_url)
    return planted, items, calls


def _mine(items: list[Any]) -> list[Resource]:
    return [i for i in items if isinstance(i, Resource) and i.kind in KINDS]


def _outcomes(items: list[Any]) -> list[Outcome]:
    load_all()
    return [o for o in evaluate_all(items) if o.check.id in CHECKS]


def _statuses(items: list[Any], check_id: str) -> dict[str, str]:
    return {o.subject: o.verdict.status for o in _outcomes(items) if o.check.id == check_id}


def test_every_check_is_registered() -> None:
    assert set(load_all()) >= CHECKS


def test_failures_are_exactly_the_planted_ones(seeded) -> None:
    planted, items, _ = seeded
    assert_failures_are_planted(planted, items, CHECKS, frozenset(FAIL_ONLY))


def test_resources_are_keyed_by_arn_json_and_in_their_own_region(seeded) -> None:
    _, items, _ = seeded
    resources = _mine(items)
    assert {r.kind for r in resources} == KINDS
    for res in resources:
        assert res.key.startswith("arn:aws:"), res.key
        json.dumps(res.data)
        assert "ResponseMetadata" not in json.dumps(res.data)
    regions = {r.key: r.region for r in resources if r.kind == "aws.s3.bucket"}
    assert regions[seed_storage.bucket_arn("acme-app-data")] == "eu-west-1"
    assert regions[WEBSITE] == "us-east-1"
    assert len(regions) == 8
    by_kind = Counter(r.kind for r in resources)
    assert by_kind["aws.config.region"] == by_kind["aws.guardduty.region"] == len(REGIONS)
    assert by_kind["aws.s3.account_public_access_block"] == 1
    # The multi-region trail is listed as a shadow in every region but collected once.
    assert by_kind["aws.cloudtrail.trail"] == 2
    trails = {r.key: r.region for r in resources if r.kind == "aws.cloudtrail.trail"}
    assert trails[TRAIL] == "eu-west-1"


def test_log_buckets_are_not_asked_to_log_themselves(seeded) -> None:
    _, items, _ = seeded
    statuses = _statuses(items, seed_storage.LOGGED)
    assert statuses[seed_storage.bucket_arn("acme-access-logs-use1")] == "not_applicable"
    assert statuses[seed_storage.bucket_arn("acme-access-logs-euw1")] == "not_applicable"


def test_calls_grow_with_buckets_and_trails_not_with_checks(seeded) -> None:
    _, items, calls = seeded
    buckets = [r for r in _mine(items) if r.kind == "aws.s3.bucket"]
    # AWS Config records every type in the home region (the sample's second region has a
    # recorder that never started): home buckets are read from Config, one call per 100.
    from_config = [b for b in buckets if "aws_config" in b.data]
    direct = [b for b in buckets if "aws_config" not in b.data]
    assert {b.region for b in from_config} == {REGIONS[0]}
    assert {b.region for b in direct} == {REGIONS[1]}
    assert calls[("config", "BatchGetResourceConfig")] == 1
    # moto's ListBuckets omits BucketRegion: one listing per collected region replaces
    # GetBucketLocation for every bucket in those regions.
    assert calls[("s3", "ListBuckets")] == 1 + len(REGIONS)
    assert calls[("s3", "GetBucketLocation")] == 0
    assert calls[("s3control", "GetPublicAccessBlock")] == 2  # account resource + bucket context
    for operation in ("GetBucketLogging", "GetBucketPolicy"):
        assert calls[("s3", operation)] == len(direct), operation
    # moto's configuration items lack encryption and versioning (AWS's hold them), and hold a
    # public access block only where one is set: those settings are read directly.
    for operation in ("GetBucketEncryption", "GetBucketVersioning"):
        assert calls[("s3", operation)] == len(buckets), operation
    unblocked_home = [b for b in from_config if b.data["public_access_block"] is None]
    assert unblocked_home, "the sample has a home bucket without its own block"
    assert calls[("s3", "GetPublicAccessBlock")] == len(direct) + len(unblocked_home)
    assert calls[("cloudtrail", "DescribeTrails")] == len(REGIONS)
    assert calls[("cloudtrail", "GetTrailStatus")] == 2
    assert calls[("cloudtrail", "GetEventSelectors")] == 2
    # Read by the Config service and again by S3 to decide where Config can be used.
    assert calls[("config", "DescribeConfigurationRecorders")] == 2 * len(REGIONS)
    assert calls[("config", "DescribeConfigurationRecorderStatus")] == 2 * len(REGIONS)
    assert calls[("guardduty", "ListDetectors")] == len(REGIONS)
    assert calls[("guardduty", "GetDetector")] == 1


def _bucket_data(items: list[Any]) -> dict[str, dict[str, Any]]:
    return {r.key: {k: v for k, v in r.data.items() if k != "aws_config"}
            for r in _mine(items) if r.kind == "aws.s3.bucket"}


def test_buckets_read_from_config_carry_the_same_evidence_as_read_directly(
    seeded, moto_url: str
) -> None:
    _, through_config, _ = seeded
    config = boto3.client("config", region_name=REGIONS[0], endpoint_url=moto_url)
    config.stop_configuration_recorder(ConfigurationRecorderName="default")
    directly, calls = _collect(moto_url)
    assert calls[("config", "BatchGetResourceConfig")] == 0
    assert not any("aws_config" in r.data for r in _mine(directly))
    assert _bucket_data(through_config) == _bucket_data(directly)
    home = [r for r in _mine(through_config) if r.kind == "aws.s3.bucket"
            and r.region == REGIONS[0]]
    for bucket in home:
        # moto's items hold logging and policy always, a public access block where one is set.
        fields = {"logging", "policy"}
        if bucket.data["public_access_block"] is not None:
            fields.add("public_access_block")
        assert bucket.data["aws_config"]["fields"] == sorted(fields), bucket.key
        assert bucket.data["aws_config"]["capture_time"]


def test_config_excluding_buckets_is_not_used_for_them(moto_url: str) -> None:
    planted: dict[str, set[str]] = {}
    seed_storage.seed(_client(moto_url), REGIONS, planted)
    config = boto3.client("config", region_name=REGIONS[0], endpoint_url=moto_url)
    recorder = config.describe_configuration_recorders()["ConfigurationRecorders"][0]
    recorder["recordingGroup"] = {
        "allSupported": False, "includeGlobalResourceTypes": False,
        "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
        "exclusionByResourceTypes": {"resourceTypes": ["AWS::S3::Bucket"]}}
    config.put_configuration_recorder(ConfigurationRecorder=recorder)
    items, calls = _collect(moto_url)
    assert calls[("config", "BatchGetResourceConfig")] == 0
    assert not any("aws_config" in r.data for r in _mine(items))


# A configuration item as AWS Config returns it (supplementary values are JSON strings).
AWS_ITEM = {
    "resourceId": "acme-reports", "configurationItemStatus": "OK",
    "configurationItemCaptureTime": "2026-03-30T08:15:00+00:00",
    "supplementaryConfiguration": {
        "AccessControlList": json.dumps(json.dumps({"grantList": []})),
        "BucketLoggingConfiguration": json.dumps({"destinationBucketName": "acme-logs",
                                                  "logFilePrefix": "reports/"}),
        "BucketPolicy": json.dumps({"policyText": json.dumps(
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]})}),
        "BucketVersioningConfiguration": json.dumps({"status": "Suspended",
                                                     "isMfaDeleteEnabled": None}),
        "PublicAccessBlockConfiguration": json.dumps({
            "blockPublicAcls": True, "ignorePublicAcls": True, "blockPublicPolicy": False,
            "restrictPublicBuckets": False}),
        "ServerSideEncryptionConfiguration": json.dumps({"rules": [{
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms",
                                                   "kmsMasterKeyID": "arn:aws:kms:k"},
            "bucketKeyEnabled": True}]}),
    },
}


def test_an_aws_config_item_normalises_to_the_direct_calls_shapes() -> None:
    from connectors.aws import s3_via_config

    assert s3_via_config.settings(AWS_ITEM) == {
        "encryption": {"Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "arn:aws:kms:k"},
            "BucketKeyEnabled": True}]},
        "logging": {"TargetBucket": "acme-logs", "TargetPrefix": "reports/"},
        "policy": {"Statement": [{"Effect": "Allow", "Principal": "*",
                                  "Action": "s3:GetObject"}]},
        "versioning": {"Status": "Suspended"},
        "public_access_block": {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                "BlockPublicPolicy": False, "RestrictPublicBuckets": False},
    }
    off = {"supplementaryConfiguration": {
        "BucketLoggingConfiguration": json.dumps({"destinationBucketName": None,
                                                  "logFilePrefix": None}),
        "BucketPolicy": json.dumps({"policyText": None}),
        "BucketVersioningConfiguration": json.dumps({"status": "Off",
                                                     "isMfaDeleteEnabled": None}),
        "ServerSideEncryptionConfiguration": json.dumps({"rules": []}),
        "BucketAccelerateConfiguration": json.dumps({"status": None})}}
    assert s3_via_config.settings(off) == {"encryption": None, "logging": None, "policy": None,
                                           "versioning": {}}
    # A setting that does not parse is left to the direct call, never guessed.
    broken = {"supplementaryConfiguration": {"BucketPolicy": "{not json"}}
    assert s3_via_config.settings(broken) == {}


@pytest.mark.parametrize(("recorder", "used"), [
    ({}, True),
    ({"recordingGroup": {"allSupported": True}}, True),
    ({"recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::S3::Bucket"]}}, True),
    ({"recordingGroup": {"allSupported": False, "resourceTypes": ["AWS::EC2::Volume"]}}, False),
    ({"recordingGroup": {"allSupported": False,
                         "recordingStrategy": {"useOnly": "EXCLUSION_BY_RESOURCE_TYPES"},
                         "exclusionByResourceTypes": {"resourceTypes": ["AWS::EC2::Volume"]}}},
     True),
    ({"recordingMode": {"recordingFrequency": "DAILY"}}, False),
    ({"recordingMode": {"recordingFrequency": "DAILY", "recordingModeOverrides": [
        {"resourceTypes": ["AWS::S3::Bucket"], "recordingFrequency": "CONTINUOUS"}]}}, True),
    ({"recordingMode": {"recordingFrequency": "CONTINUOUS", "recordingModeOverrides": [
        {"resourceTypes": ["AWS::S3::Bucket"], "recordingFrequency": "DAILY"}]}}, False),
])
def test_config_is_used_only_where_it_records_buckets_as_they_change(
    recorder: dict[str, Any], used: bool
) -> None:
    from connectors.aws import s3_via_config

    assert (s3_via_config.covers_buckets(recorder)
            and s3_via_config.continuous(recorder)) is used


def test_account_block_protects_every_bucket_and_saves_their_block_calls(
    seeded, moto_url: str
) -> None:
    s3control = boto3.client("s3control", region_name=REGIONS[0], endpoint_url=moto_url)

    # S3 Control addresses {account}.{endpoint}, which has no DNS name on loopback.
    def unprefix(request: Any, **_: Any) -> None:
        request.url = request.url.replace(f"://{ACCOUNT}.", "://", 1)

    s3control.meta.events.register("before-sign.s3-control", unprefix)
    s3control.put_public_access_block(AccountId=ACCOUNT,
                                      PublicAccessBlockConfiguration=seed_storage.BLOCK_ALL)
    items, calls = _collect(moto_url)
    assert calls[("s3", "GetPublicAccessBlock")] == 0
    assert _statuses(items, seed_storage.ACCOUNT_BLOCK) == {
        f"arn:aws:s3::{ACCOUNT}:account-public-access-block": "pass"}
    assert set(_statuses(items, seed_storage.BLOCKED).values()) == {"pass"}
    # The public statement is still there, but RestrictPublicBuckets neutralises it.
    assert _statuses(items, seed_storage.NOT_PUBLIC)[WEBSITE] == "pass"


def test_multi_region_trail_passes_only_when_logging_management_events(
    seeded, moto_url: str
) -> None:
    cloudtrail = boto3.client("cloudtrail", region_name="eu-west-1", endpoint_url=moto_url)
    cloudtrail.start_logging(Name="acme-all-regions")
    cloudtrail.put_event_selectors(TrailName="acme-all-regions", EventSelectors=[{
        "ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}])
    items, _ = _collect(moto_url)
    assert _statuses(items, seed_storage.MULTI_REGION_TRAIL) == {ACCOUNT_KEY: "fail"}
    assert _statuses(items, seed_storage.TRAIL_LOGGING)[TRAIL] == "pass"

    cloudtrail.put_event_selectors(TrailName="acme-all-regions", EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True}])
    items, _ = _collect(moto_url)
    assert _statuses(items, seed_storage.MULTI_REGION_TRAIL) == {ACCOUNT_KEY: "pass"}


def test_trail_homed_outside_the_collected_regions_is_collected_once(moto_url: str) -> None:
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url).create_bucket(
        Bucket="trail-bucket")
    sydney = boto3.client("cloudtrail", region_name="ap-southeast-2", endpoint_url=moto_url)
    sydney.create_trail(Name="org-wide", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    sydney.create_trail(Name="sydney-only", S3BucketName="trail-bucket")
    sydney.start_logging(Name="org-wide")
    items, _ = _collect(moto_url)
    trails = [r for r in _mine(items) if r.kind == "aws.cloudtrail.trail"]
    assert [(t.data["Name"], t.region) for t in trails] == [("org-wide", "ap-southeast-2")]
    assert _statuses(items, seed_storage.MULTI_REGION_TRAIL) == {ACCOUNT_KEY: "pass"}


def test_bucket_outside_the_collected_regions_is_located_and_read_there(moto_url: str) -> None:
    boto3.client("s3", region_name="ap-southeast-2", endpoint_url=moto_url).create_bucket(
        Bucket="sydney-archive",
        CreateBucketConfiguration={"LocationConstraint": "ap-southeast-2"})
    items, calls = _collect(moto_url)
    (bucket,) = [r for r in _mine(items) if r.kind == "aws.s3.bucket"]
    assert (bucket.key, bucket.region) == ("arn:aws:s3:::sydney-archive", "ap-southeast-2")
    assert calls[("s3", "GetBucketLocation")] == 1
    assert "_errors" not in bucket.data and bucket.data["encryption"] is None


def test_an_empty_account_fails_the_account_wide_checks(moto_url: str) -> None:
    items, _ = _collect(moto_url)
    assert _statuses(items, seed_storage.MULTI_REGION_TRAIL) == {ACCOUNT_KEY: "fail"}
    for check_id in (seed_storage.CONFIG, seed_storage.GUARDDUTY):
        statuses = _statuses(items, check_id)
        assert len(statuses) == len(REGIONS) and set(statuses.values()) == {"fail"}, check_id


def test_uncollected_settings_give_error_never_pass() -> None:
    load_all()

    def verdict(check_id: str, data: dict[str, Any]) -> str:
        return REGISTRY[check_id].evaluate(data).status

    denied = "AccessDenied: denied"
    for check_id, field in ((seed_storage.ENCRYPTED, "encryption"),
                            (seed_storage.NOT_PUBLIC, "policy"),
                            (seed_storage.TLS, "policy"),
                            (seed_storage.VERSIONED, "versioning"),
                            (seed_storage.LOGGED, "logging"),
                            (seed_storage.TRAIL_LOGGING, "status"),
                            (seed_storage.CONFIG, "recorder_status"),
                            (seed_storage.GUARDDUTY, "detectors")):
        assert verdict(check_id, {"_errors": {field: denied}}) == "error", check_id
    # Without its policy, logging off cannot be told apart from a log bucket.
    assert verdict(seed_storage.LOGGED, {"logging": None, "_errors": {"policy": denied}}) == "error"
    # A bucket whose own block is fully on is blocked whatever the account says.
    own = {"public_access_block": seed_storage.BLOCK_ALL,
           "_errors": {"account_public_access_block": denied}}
    assert verdict(seed_storage.BLOCKED, own) == "pass"
    assert verdict(seed_storage.BLOCKED, {**own, "public_access_block": None}) == "error"
    public = {"policy": {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*"}]},
              "public_access_block": None, "_errors": {"account_public_access_block": denied}}
    assert verdict(seed_storage.NOT_PUBLIC, public) == "error"
    broken_trail = {"Name": "t", "IsMultiRegionTrail": True, "_errors": {"status": denied}}
    view = ScopeView(ACCOUNT, {"aws.cloudtrail.trail": [broken_trail]})
    assert REGISTRY[seed_storage.MULTI_REGION_TRAIL].evaluate(view).status == "error"


@pytest.mark.parametrize(("statement", "public"), [
    ({"Principal": "*"}, True),
    ({"Principal": {"AWS": ["arn:aws:iam::111122223333:root", "*"]}}, True),
    ({"NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}}, True),
    ({"Principal": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, False),
    ({"Principal": "*", "Condition": {"StringEquals": {"AWS:SourceVpce": "vpce-1"}}}, False),
    ({"Principal": "*", "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": "o-1"}}}, True),
    ({"Principal": "*", "Condition": {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}}, True),
    ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}, False),
    ({"Principal": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["0.0.0.0/0"]}}}, True),
    ({"Principal": "*", "Condition": {"StringLike": {"aws:PrincipalArn": "*"}}}, True),
    ({"Principal": {"Service": "cloudtrail.amazonaws.com"}}, False),
])
def test_public_policy_statements(statement: dict[str, Any], public: bool) -> None:
    load_all()
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", **statement}]}
    status = REGISTRY[seed_storage.NOT_PUBLIC].evaluate(
        {"policy": policy, "public_access_block": None, "account_public_access_block": None})
    assert status.status == ("fail" if public else "pass")


def test_bucket_policies_narrowed_in_name_only_fail_through_the_connector(moto_url: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_url)
    conditions = {
        "acme-ip-halves": {"IpAddress": {"aws:SourceIp": ["0.0.0.0/1", "128.0.0.0/1"]}},
        "acme-ipv6-halves": {"IpAddress": {"aws:SourceIp": ["::/1", "8000::/1"]}},
        "acme-any-arn": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:*"}},
        "acme-mfa-only": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        "acme-office": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24"]}},
        "acme-own-account": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
    }
    for name, condition in conditions.items():
        s3.create_bucket(Bucket=name)
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17",
            "Statement": [{"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": "*"},
                           "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/*",
                           "Condition": condition}]}))
    items, _ = _collect(moto_url, ["us-east-1"])
    got = _statuses(items, seed_storage.NOT_PUBLIC)
    assert {name: got[seed_storage.bucket_arn(name)] for name in conditions} == {
        "acme-ip-halves": "fail", "acme-ipv6-halves": "fail", "acme-any-arn": "fail",
        "acme-mfa-only": "fail", "acme-office": "pass", "acme-own-account": "pass"}
