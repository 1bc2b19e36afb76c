"""A synthetic AWS account at scale N, seeded into the emulator through its public API, with
planted misconfigurations recorded so that every tool's findings can be scored against them.

At scale N: N IAM users, N/2 S3 buckets, N/2 security groups, N/5 EBS volumes, N/10 KMS keys
and N/10 RDS instances, spread over two regions. About one resource in ten (one user in
twenty) carries a gap; the rest are configured the way a careful team would (encrypted,
private, versioned, logged). AWS Config records every supported type in both regions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
from botocore.config import Config

from bench.emulator import CREDENTIALS

REGIONS = ("us-east-1", "eu-west-1")
ACCOUNT = "123456789012"
SEED_WORKERS = 8
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}
AES256 = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}
PASSWORD = "Bench-only-password-1!"


@dataclass(frozen=True)
class Gap:
    """One kind of planted misconfiguration, with the finding that reports it in each tool.
    Planted and found resources are compared by their short id (bucket name, group id, ...)."""

    name: str
    annexa_check: str
    custodian_policy: str
    custodian_id: str  # the field of Custodian's resources.json that holds the short id


GAPS = (
    Gap("iam user: console access without MFA", "aws.iam.user_console_mfa_enabled",
        "iam-user-console-without-mfa", "UserName"),
    Gap("s3 bucket: no default encryption", "aws.s3.bucket_default_encryption_enabled",
        "s3-bucket-unencrypted", "Name"),
    Gap("s3 bucket: policy open to anyone", "aws.s3.bucket_policy_not_public",
        "s3-bucket-public-policy", "Name"),
    Gap("security group: SSH open to 0.0.0.0/0",
        "aws.ec2.security_group_admin_ports_closed_to_internet",
        "security-group-ssh-open-to-world", "GroupId"),
    Gap("ebs volume: unencrypted", "aws.ec2.ebs_volume_encrypted",
        "ebs-volume-unencrypted", "VolumeId"),
    Gap("kms key: rotation off", "aws.kms.key_rotation_enabled",
        "kms-key-rotation-off", "KeyId"),
    Gap("rds instance: publicly accessible", "aws.rds.db_instance_not_publicly_accessible",
        "rds-instance-public", "DBInstanceIdentifier"),
    Gap("rds instance: storage unencrypted", "aws.rds.db_instance_storage_encrypted",
        "rds-instance-unencrypted", "DBInstanceIdentifier"),
)
GAP = {gap.annexa_check: gap for gap in GAPS}

Planted = dict[str, set[str]]  # gap name -> short ids
Found = list[tuple[str, str]]  # (gap name, short id) planted by one task
Task = Callable[[], Found]


def short_id(key: str) -> str:
    """The last segment of an ARN: bucket name, group, volume or key id, instance or user name."""
    return key.replace(":::", ":").rsplit(":", 1)[-1].rsplit("/", 1)[-1]


def seeded_resources(n: int) -> int:
    return n + n // 2 + n // 2 + n // 5 + n // 10 + n // 10


class _Clients:
    def __init__(self, url: str) -> None:
        config = Config(max_pool_connections=SEED_WORKERS * 2, retries={"max_attempts": 3})
        self._clients = {
            (service, region): boto3.client(service, region_name=region, endpoint_url=url,
                                            config=config, **CREDENTIALS)
            for service in ("iam", "s3", "ec2", "kms", "rds", "config")
            for region in REGIONS
        }

    def __call__(self, service: str, region: str = REGIONS[0]) -> Any:
        return self._clients[(service, region)]


def _gap(check_id: str, short: str, planted: bool) -> Found:
    return [(GAP[check_id].name, short)] if planted else []


def _region(i: int) -> str:
    # In blocks of ten, so that the gaps planted at fixed positions land in every region.
    return REGIONS[(i // 10) % len(REGIONS)]


def _user(c: _Clients, i: int) -> Found:
    """A quarter of the users sign in to the console; every fifth of those has no MFA."""
    name = f"bench-user-{i:05d}"
    iam = c("iam")
    iam.create_user(UserName=name)
    if i % 4:
        return []
    iam.create_login_profile(UserName=name, Password=PASSWORD)
    if i % 20 == 0:
        return _gap("aws.iam.user_console_mfa_enabled", name, True)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"][
        "SerialNumber"]
    iam.enable_mfa_device(UserName=name, SerialNumber=serial,
                          AuthenticationCode1="123456", AuthenticationCode2="654321")
    return []


def _log_bucket(region: str) -> str:
    return f"bench-access-logs-{region}"


def _policy(name: str, public: bool) -> str:
    arn = f"arn:aws:s3:::{name}"
    if public:
        statement = {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
                     "Action": "s3:GetObject", "Resource": f"{arn}/*"}
    else:
        statement = {"Sid": "DenyPlainHttp", "Effect": "Deny", "Principal": "*",
                     "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
                     "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _create_bucket(s3: Any, region: str, name: str) -> None:
    params: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**params)


def _bucket(c: _Clients, i: int) -> Found:
    region, name = _region(i), f"bench-bucket-{i:05d}"
    unencrypted, public = i % 10 == 1, i % 10 == 3
    s3 = c("s3", region)
    _create_bucket(s3, region, name)
    if not unencrypted:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=AES256)
    if not public:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=BLOCK_ALL)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=name, Policy=_policy(name, public))
    s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": {
        "TargetBucket": _log_bucket(region), "TargetPrefix": f"{name}/"}})
    return (_gap("aws.s3.bucket_default_encryption_enabled", name, unencrypted)
            + _gap("aws.s3.bucket_policy_not_public", name, public))


def _security_group(c: _Clients, i: int, vpcs: dict[str, str]) -> Found:
    region, ssh_open = _region(i), i % 10 == 2
    rule = ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} if ssh_open else
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "10.0.0.0/8"}]})
    ec2 = c("ec2", region)
    group = ec2.create_security_group(GroupName=f"bench-sg-{i:05d}", Description="bench",
                                      VpcId=vpcs[region])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[rule])
    return _gap("aws.ec2.security_group_admin_ports_closed_to_internet", group, ssh_open)


def _volume(c: _Clients, i: int) -> Found:
    region, unencrypted = _region(i), i % 10 == 4
    volume = c("ec2", region).create_volume(AvailabilityZone=f"{region}a", Size=8,
                                            VolumeType="gp3", Encrypted=not unencrypted)
    return _gap("aws.ec2.ebs_volume_encrypted", volume["VolumeId"], unencrypted)


def _key(c: _Clients, i: int) -> Found:
    region, no_rotation = _region(i), i % 10 == 5
    kms = c("kms", region)
    key_id = kms.create_key(Description=f"bench key {i}")["KeyMetadata"]["KeyId"]
    if not no_rotation:
        kms.enable_key_rotation(KeyId=key_id)
    return _gap("aws.kms.key_rotation_enabled", key_id, no_rotation)


def _database(c: _Clients, i: int) -> Found:
    region, name = _region(i), f"bench-db-{i:05d}"
    public, unencrypted = i % 10 == 6, i % 10 == 7
    c("rds", region).create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="bench", MasterUserPassword=PASSWORD,
        StorageEncrypted=not unencrypted, PubliclyAccessible=public, MultiAZ=True,
        BackupRetentionPeriod=7, AutoMinorVersionUpgrade=True)
    return (_gap("aws.rds.db_instance_not_publicly_accessible", name, public)
            + _gap("aws.rds.db_instance_storage_encrypted", name, unencrypted))


def _run(tasks: list[Task], workers: int, planted: Planted) -> None:
    with ThreadPoolExecutor(workers, thread_name_prefix="seed") as pool:
        for future in [pool.submit(task) for task in tasks]:
            for gap_name, short in future.result():
                planted.setdefault(gap_name, set()).add(short)


def _recorders(c: _Clients) -> None:
    """AWS Config records every supported type in both regions (the state that our own check
    aws.config.recording_in_region asks for)."""
    for region in REGIONS:
        config = c("config", region)
        config.put_configuration_recorder(ConfigurationRecorder={
            "name": "default", "roleARN": f"arn:aws:iam::{ACCOUNT}:role/aws-config",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
        config.put_delivery_channel(DeliveryChannel={"name": "default",
                                                     "s3BucketName": _log_bucket(region)})
        config.start_configuration_recorder(ConfigurationRecorderName="default")


def set_config_recording(url: str, recording: bool) -> None:
    """Start or stop the AWS Config recorders (seeded by `seed`) in every region."""
    c = _Clients(url)
    for region in REGIONS:
        config = c("config", region)
        if recording:
            config.start_configuration_recorder(ConfigurationRecorderName="default")
        else:
            config.stop_configuration_recorder(ConfigurationRecorderName="default")


def seed(url: str, n: int) -> Planted:
    """Seed an empty emulator with the account at scale n; return what was planted."""
    if n < 10:
        raise ValueError(f"scale {n} is too small: at least 10 gives every kind a resource")
    c = _Clients(url)
    vpcs = {region: c("ec2", region).describe_vpcs(
        Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        for region in REGIONS}
    for region in REGIONS:
        s3 = c("s3", region)
        _create_bucket(s3, region, _log_bucket(region))
        s3.put_bucket_encryption(Bucket=_log_bucket(region),
                                 ServerSideEncryptionConfiguration=AES256)
        s3.put_public_access_block(Bucket=_log_bucket(region),
                                   PublicAccessBlockConfiguration=BLOCK_ALL)
        s3.put_bucket_policy(Bucket=_log_bucket(region), Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Sid": "AllowAccessLogs", "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{_log_bucket(region)}/*",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}))
    _recorders(c)
    tasks: list[Task] = [partial(_user, c, i) for i in range(n)]
    tasks += [partial(_bucket, c, i) for i in range(n // 2)]
    tasks += [partial(_volume, c, i) for i in range(n // 5)]
    tasks += [partial(_key, c, i) for i in range(n // 10)]
    tasks += [partial(_database, c, i) for i in range(n // 10)]
    planted: Planted = {}
    _run(tasks, SEED_WORKERS, planted)
    # moto creates security groups without a lock: concurrent creations can break each other.
    _run([partial(_security_group, c, i, vpcs) for i in range(n // 2)], 1, planted)
    return planted
