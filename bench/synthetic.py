"""Synthetic AWS resources in the shapes the connector produces, for benchmarks without API
time. Every tenth resource of a kind carries a planted gap so that checks fail as well as pass."""

from __future__ import annotations

from collections.abc import Iterator

from collector.model import Resource, Scope

ACCOUNT = "123456789012"
SCOPE = Scope(provider="aws", id=ACCOUNT, key=f"arn:aws:iam::{ACCOUNT}:root")
REGIONS = ("us-east-1", "eu-west-1")


def _security_group(i: int, region: str, day: int) -> Resource:
    gid = f"sg-{i:017x}"
    ingress = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                "IpRanges": [{"CidrIp": "10.0.0.0/8"}], "Ipv6Ranges": [], "PrefixListIds": [],
                "UserIdGroupPairs": []}]
    if i % 10 == 0:
        ingress.append({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                        "PrefixListIds": [], "UserIdGroupPairs": []})
    arn = f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/{gid}"
    return SCOPE.resource("aws.ec2.security_group", arn, {
        "Description": f"service {i} (rev {day})", "GroupId": gid, "GroupName": f"svc-{i}",
        "IpPermissions": ingress,
        "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                 "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}],
        "OwnerId": ACCOUNT, "SecurityGroupArn": arn, "Tags": [{"Key": "team", "Value": "t"}],
        "VpcId": f"vpc-{i % 50:017x}"}, region)


def _volume(i: int, region: str, day: int) -> Resource:
    vid = f"vol-{i:017x}"
    return SCOPE.resource("aws.ec2.volume", f"arn:aws:ec2:{region}:{ACCOUNT}:volume/{vid}", {
        "Attachments": [], "AvailabilityZone": f"{region}a", "CreateTime": "2026-01-01T00:00:00",
        "Encrypted": i % 10 != 0, "Iops": 3000, "Size": 50 + day, "State": "available",
        "Tags": [{"Key": "Name", "Value": f"data-{i}"}], "VolumeId": vid, "VolumeType": "gp3"},
        region)


def _bucket(i: int, region: str, day: int) -> Resource:
    name = f"bench-bucket-{i}"
    block = {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
             "RestrictPublicBuckets": True}
    return SCOPE.resource("aws.s3.bucket", f"arn:aws:s3:::{name}", {
        "CreationDate": "2026-01-01T00:00:00", "Name": name, "account_public_access_block": None,
        "encryption": None if i % 10 == 0 else {"Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]},
        "logging": {"TargetBucket": "bench-logs", "TargetPrefix": f"{name}/{day}/"},
        "policy": None, "public_access_block": block,
        "versioning": {"Status": "Enabled" if i % 10 else "Suspended"}}, region)


def _user(i: int, region: str, day: int) -> Resource:
    name = f"user{i}"
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    return SCOPE.resource("aws.iam.user", arn, {
        "Arn": arn, "AttachedManagedPolicies": [], "CreateDate": "2026-01-01T00:00:00+00:00",
        "GroupList": ["staff"], "Path": "/", "Tags": [{"Key": "rev", "Value": str(day)}],
        "UserId": f"AIDA{i:016d}", "UserName": name, "UserPolicyList": [],
        "credential_report": {"access_keys": [], "mfa_active": i % 10 != 0,
                              "password_enabled": True,
                              "password_last_changed": "2026-11-01T00:00:00+00:00",
                              "password_last_used": "2026-11-20T00:00:00+00:00",
                              "user_creation_time": "2026-01-01T00:00:00+00:00"}}, "global")


MAKERS = (_security_group, _volume, _bucket, _user)


def resources(n: int, day: int = 0, churn: float = 0.0) -> Iterator[Scope | Resource]:
    """`n` resources cycling through the kinds above. With `churn`, that share of them (chosen
    by index) shows the revision `day` instead of 0, so consecutive days differ by about it."""
    yield SCOPE
    period = int(1 / churn) if churn else 0
    for i in range(n):
        rev = day if period and (i + day) % period == 0 else 0
        yield MAKERS[i % len(MAKERS)](i, REGIONS[i % 2], rev)
