"""EC2 networking and block storage: security groups, EBS volumes, the region's EBS
encryption-by-default setting, and VPCs with their flow logs.

Every kind comes from one paginated describe call per region (1,000 items a page); flow logs
are read once per region and attached to their VPCs, never fetched VPC by VPC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

PAGE = {"PageSize": 1000}


def _arn(scope: Scope, region: str, resource: str) -> str:
    partition = scope.key.split(":")[1]
    return f"arn:{partition}:ec2:{region}:{scope.id}:{resource}"


def _pages(ec2: Any, operation: str, result_key: str) -> Iterator[dict[str, Any]]:
    for page in ec2.get_paginator(operation).paginate(PaginationConfig=PAGE):
        yield from page[result_key]


@service("ec2", kinds=("aws.ec2.security_group",), regional=True)
def security_groups(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    ec2 = session.client("ec2", region)
    for group in _pages(ec2, "describe_security_groups", "SecurityGroups"):
        key = group.get("SecurityGroupArn") or _arn(
            scope, region, f"security-group/{group['GroupId']}"
        )
        yield scope.resource("aws.ec2.security_group", key, jsonable(group), region)


@service("ec2", kinds=("aws.ec2.volume",), regional=True)
def volumes(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    ec2 = session.client("ec2", region)
    for volume in _pages(ec2, "describe_volumes", "Volumes"):
        key = _arn(scope, region, f"volume/{volume['VolumeId']}")
        yield scope.resource("aws.ec2.volume", key, jsonable(volume), region)


@service("ec2", kinds=("aws.ec2.ebs_encryption_default",), regional=True)
def ebs_encryption_default(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    ec2 = session.client("ec2", region)
    data = jsonable(ec2.get_ebs_encryption_by_default())
    # The default key only decides anything while encryption by default is on.
    if data.get("EbsEncryptionByDefault"):
        detail(data, "KmsKeyId", ec2.get_ebs_default_kms_key_id, pick=lambda r: r["KmsKeyId"])
    key = _arn(scope, region, "ebs-encryption-by-default")
    yield scope.resource("aws.ec2.ebs_encryption_default", key, data, region)


@service("ec2", kinds=("aws.ec2.vpc",), regional=True)
def vpcs(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    """Each VPC's data carries "FlowLogs": the flow logs whose resource is the VPC itself
    (subnet and interface flow logs cover only part of it)."""
    ec2 = session.client("ec2", region)
    flow_logs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for flow_log in _pages(ec2, "describe_flow_logs", "FlowLogs"):
        flow_logs[flow_log.get("ResourceId", "")].append(jsonable(flow_log))
    for vpc in _pages(ec2, "describe_vpcs", "Vpcs"):
        data = jsonable(vpc)
        data["FlowLogs"] = flow_logs.get(vpc["VpcId"], [])
        yield scope.resource(
            "aws.ec2.vpc", _arn(scope, region, f"vpc/{vpc['VpcId']}"), data, region
        )
