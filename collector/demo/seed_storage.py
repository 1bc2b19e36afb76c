"""Storage, audit logging and monitoring of the sample organisation.

The home region holds the audit trail's log bucket, an access-log bucket, a partner share
narrowed to the organisation, a public website, and a legacy export bucket created before
default encryption was set. The second region holds application data, its own access-log
bucket and a forgotten scratch bucket. Nobody turned on the account-wide public access block.

The management-events trail was created without the multi-region flag; the multi-region trail
that someone set up later in the second region was never started. AWS Config and GuardDuty were
switched on in the home region only: the second region has a recorder that never started.
"""

from __future__ import annotations

import json
from typing import Any

from collector.demo.seed import ACCOUNT, Client, Planted, plant

ENCRYPTED = "aws.s3.bucket_default_encryption_enabled"
BLOCKED = "aws.s3.bucket_public_access_blocked"
NOT_PUBLIC = "aws.s3.bucket_policy_not_public"
TLS = "aws.s3.bucket_requires_tls"
VERSIONED = "aws.s3.bucket_versioning_enabled"
LOGGED = "aws.s3.bucket_access_logging_enabled"
ACCOUNT_BLOCK = "aws.s3.account_public_access_block_enabled"
MULTI_REGION_TRAIL = "aws.cloudtrail.multi_region_trail_enabled"
TRAIL_LOGGING = "aws.cloudtrail.trail_logging_enabled"
TRAIL_VALIDATION = "aws.cloudtrail.trail_log_file_validation_enabled"
TRAIL_KMS = "aws.cloudtrail.trail_encrypted_with_kms"
CONFIG = "aws.config.recording_in_region"
GUARDDUTY = "aws.guardduty.enabled_in_region"

ACCOUNT_KEY = f"arn:aws:iam::{ACCOUNT}:root"
ORG_ID = "o-a1b2c3d4e5"
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
AES256 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def bucket_arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def _deny_plain_http(name: str) -> dict[str, Any]:
    return {"Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket_arn(name), f"{bucket_arn(name)}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def _allow_service(name: str, service: str, actions: list[str]) -> dict[str, Any]:
    return {"Sid": f"Allow{service.split('.')[0].title()}", "Effect": "Allow",
            "Principal": {"Service": service}, "Action": actions,
            "Resource": f"{bucket_arn(name)}/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}


def _bucket(
    s3: Any,
    region: str,
    name: str,
    *,
    encryption: dict[str, Any] | None = AES256,
    block: bool = True,
    versioning: str | None = "Enabled",
    log_to: str | None = None,
    statements: tuple[dict[str, Any], ...] = (),
) -> str:
    params: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**params)
    if encryption:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=encryption)
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=BLOCK_ALL)
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})
    if statements:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(
            {"Version": "2012-10-17", "Statement": list(statements)}))
    if log_to:
        s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": log_to, "TargetPrefix": f"{name}/"}})
    return bucket_arn(name)


def _log_bucket(s3: Any, region: str, name: str) -> None:
    """Receives server access logs: it is not logged itself, which the check accepts."""
    _bucket(s3, region, name, statements=(
        _allow_service(name, "logging.s3.amazonaws.com", ["s3:PutObject"]),
        _deny_plain_http(name)))


def _seed_home_buckets(s3: Any, region: str, kms_key: str, planted: Planted) -> str:
    logs = "acme-access-logs-use1"
    _log_bucket(s3, region, logs)

    trail_bucket = "acme-cloudtrail-logs"
    _bucket(s3, region, trail_bucket, log_to=logs,
            encryption={"Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}}]},
            statements=(
                _allow_service(trail_bucket, "cloudtrail.amazonaws.com", ["s3:PutObject"]),
                _deny_plain_http(trail_bucket)))

    # "*" narrowed to the organisation is not public.
    partner = "acme-partner-share"
    _bucket(s3, region, partner, log_to=logs, statements=(
        {"Sid": "OrgRead", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": "s3:GetObject", "Resource": f"{bucket_arn(partner)}/*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG_ID}}},
        _deny_plain_http(partner)))

    website = _bucket(s3, region, "acme-public-website", block=False, log_to=logs, statements=(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"{bucket_arn('acme-public-website')}/*"},))
    for check_id in (BLOCKED, NOT_PUBLIC, TLS):
        plant(planted, check_id, website)

    exports = _bucket(s3, region, "acme-legacy-exports", encryption=None, log_to=logs,
                      statements=(_deny_plain_http("acme-legacy-exports"),))
    plant(planted, ENCRYPTED, exports)
    return trail_bucket


def _seed_second_buckets(s3: Any, region: str, planted: Planted) -> None:
    logs = "acme-access-logs-euw1"
    _log_bucket(s3, region, logs)
    _bucket(s3, region, "acme-app-data", log_to=logs,
            statements=(_deny_plain_http("acme-app-data"),))
    scratch = _bucket(s3, region, "acme-scratch", versioning="Suspended")
    for check_id in (VERSIONED, LOGGED, TLS):
        plant(planted, check_id, scratch)


def _seed_trails(client: Client, home: str, second: str, bucket: str, kms_key: str,
                 planted: Planted) -> None:
    cloudtrail = client("cloudtrail", home)
    cloudtrail.create_trail(Name="acme-management-events", S3BucketName=bucket,
                            EnableLogFileValidation=True, KmsKeyId=kms_key)
    cloudtrail.start_logging(Name="acme-management-events")

    stopped = client("cloudtrail", second).create_trail(
        Name="acme-all-regions", S3BucketName=bucket, IsMultiRegionTrail=True)["TrailARN"]
    for check_id in (TRAIL_LOGGING, TRAIL_VALIDATION, TRAIL_KMS):
        plant(planted, check_id, stopped)
    plant(planted, MULTI_REGION_TRAIL, ACCOUNT_KEY)


def _seed_monitoring(client: Client, regions: list[str], bucket: str, planted: Planted) -> None:
    recorder = {"name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}}
    home, *others = regions
    config = client("config", home)
    config.put_configuration_recorder(ConfigurationRecorder=recorder)
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": bucket})
    config.start_configuration_recorder(ConfigurationRecorderName="default")
    client("guardduty", home).create_detector(Enable=True)
    for region in others:
        # Set up without a delivery channel, so it could never be started.
        client("config", region).put_configuration_recorder(ConfigurationRecorder=recorder)
        plant(planted, CONFIG, f"arn:aws:config:{region}:{ACCOUNT}:configuration-recorders")
        plant(planted, GUARDDUTY, f"arn:aws:guardduty:{region}:{ACCOUNT}:detectors")


def seed(client: Client, regions: list[str], planted: Planted) -> None:
    home = regions[0]
    second = regions[1] if len(regions) > 1 else home
    kms = client("kms", home)
    kms_key = kms.create_key(Description="audit logs")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName="alias/audit-logs", TargetKeyId=kms_key)
    kms.enable_key_rotation(KeyId=kms_key)

    trail_bucket = _seed_home_buckets(client("s3", home), home, kms_key, planted)
    _seed_second_buckets(client("s3", second), second, planted)
    plant(planted, ACCOUNT_BLOCK, f"arn:aws:s3::{ACCOUNT}:account-public-access-block")
    _seed_trails(client, home, second, trail_bucket, kms_key, planted)
    _seed_monitoring(client, regions, trail_bucket, planted)
