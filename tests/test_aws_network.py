"""Security groups, EBS, VPC flow logs and RDS against a seeded moto server."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest

import connectors.aws
from checks.registry import load_all
from collector.demo import seed_network
from collector.evaluate import Outcome, evaluate_all
from collector.model import Resource
from connectors.aws import Settings
from tests.helpers import assert_failures_are_planted

REGIONS = ["us-east-1", "eu-west-1"]
KINDS = {
    "aws.ec2.security_group",
    "aws.ec2.volume",
    "aws.ec2.ebs_encryption_default",
    "aws.ec2.vpc",
    "aws.rds.db_instance",
}
CHECKS = {
    "aws.ec2.security_group_admin_ports_closed_to_internet",
    "aws.ec2.security_group_all_ports_closed_to_internet",
    "aws.ec2.default_security_group_restricts_all_traffic",
    "aws.ec2.vpc_flow_logs_enabled",
    "aws.ec2.ebs_volume_encrypted",
    "aws.ec2.ebs_encryption_by_default_enabled",
    "aws.rds.db_instance_storage_encrypted",
    "aws.rds.db_instance_not_publicly_accessible",
    "aws.rds.db_instance_backup_retention_at_least_7_days",
    "aws.rds.db_instance_multi_az",
    "aws.rds.db_instance_auto_minor_version_upgrade_enabled",
}


def _seed(url: str) -> dict[str, set[str]]:
    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=url)

    planted: dict[str, set[str]] = {}
    seed_network.seed(client, REGIONS, planted)
    return planted


@pytest.fixture
def seeded(moto_url: str) -> tuple[dict[str, set[str]], list[Any], Counter[tuple[str, str]]]:
    planted = _seed(moto_url)
    calls: Counter[tuple[str, str]] = Counter()

    def observe(service: str, operation: str, status: int, retries: int) -> None:
        calls[(service, operation)] += 1

    items = list(connectors.aws.collect(Settings(regions=REGIONS, endpoint_url=moto_url), observe))
    return planted, items, calls


def _mine(items: list[Any]) -> list[Resource]:
    return [i for i in items if isinstance(i, Resource) and i.kind in KINDS]


def _outcomes(items: list[Any]) -> list[Outcome]:
    load_all()
    return [o for o in evaluate_all(items) if o.check.id in CHECKS]


def test_every_check_is_registered() -> None:
    assert set(load_all()) >= CHECKS


def test_failures_are_exactly_the_planted_ones(seeded) -> None:
    planted, items, _ = seeded
    assert_failures_are_planted(planted, items, CHECKS)


def test_resources_are_keyed_by_arn_and_json(seeded) -> None:
    _, items, _ = seeded
    resources = _mine(items)
    assert {r.kind for r in resources} == KINDS
    for res in resources:
        assert res.key.startswith("arn:aws:"), res.key
        assert res.region in REGIONS
        json.dumps(res.data)
        assert "ResponseMetadata" not in res.data
        assert "MasterUserPassword" not in res.data
    by_kind = Counter(r.kind for r in resources)
    assert by_kind["aws.ec2.ebs_encryption_default"] == len(REGIONS)
    # us-east-1: default, prod, staging, partner-link; eu-west-1: default.
    assert by_kind["aws.ec2.vpc"] == 5
    assert by_kind["aws.rds.db_instance"] == 4


def test_flow_logs_are_attached_to_their_vpc(seeded) -> None:
    _, items, _ = seeded
    vpcs = {
        r.data.get("Tags", [{}])[0].get("Value"): r.data
        for r in _mine(items)
        if r.kind == "aws.ec2.vpc" and r.data.get("Tags")
    }
    assert [fl["TrafficType"] for fl in vpcs["prod"]["FlowLogs"]] == ["ALL"]
    assert [fl["DeliverLogsStatus"] for fl in vpcs["partner-link"]["FlowLogs"]] == ["FAILED"]
    assert vpcs["staging"]["FlowLogs"] == []


def test_cluster_and_replica_members_are_not_judged_on_backups_or_zones(seeded) -> None:
    _, items, _ = seeded
    replica = next(r.key for r in _mine(items) if r.key.endswith(":db:analytics-replica"))
    statuses = {o.check.id: o.verdict.status for o in _outcomes(items) if o.subject == replica}
    assert statuses["aws.rds.db_instance_backup_retention_at_least_7_days"] == "not_applicable"
    assert statuses["aws.rds.db_instance_multi_az"] == "not_applicable"
    assert statuses["aws.rds.db_instance_storage_encrypted"] == "pass"


def test_ebs_default_key_is_evidence_or_a_recorded_gap(seeded) -> None:
    _, items, _ = seeded
    settings = {
        r.region: r.data for r in _mine(items) if r.kind == "aws.ec2.ebs_encryption_default"
    }
    on = settings["us-east-1"]
    assert on["EbsEncryptionByDefault"] is True
    # moto 5.2 does not implement GetEbsDefaultKmsKeyId: the gap is recorded, never guessed.
    assert "KmsKeyId" in on or "KmsKeyId" in on["_errors"]
    off = settings["eu-west-1"]
    assert off["EbsEncryptionByDefault"] is False
    assert "KmsKeyId" not in off and "_errors" not in off


def test_one_call_per_operation_and_region_never_per_resource(seeded) -> None:
    _, items, calls = seeded
    mine = {k: v for k, v in calls.items() if k[0] in ("ec2", "rds")}
    for operation in (
        "DescribeSecurityGroups",
        "DescribeVolumes",
        "DescribeVpcs",
        "DescribeFlowLogs",
        "GetEbsEncryptionByDefault",
    ):
        assert mine[("ec2", operation)] == len(REGIONS), operation
    assert mine[("rds", "DescribeDBInstances")] == len(REGIONS)
    assert sum(mine.values()) <= len(_mine(items))


def test_world_open_rules_are_read_from_both_address_families() -> None:
    load_all()
    from checks.aws.network import (
        security_group_admin_ports_closed_to_internet as admin,
    )
    from checks.aws.network import (
        security_group_all_ports_closed_to_internet as all_ports,
    )

    v6_range = {
        "IpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 20,
                "ToPort": 25,
                "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
            }
        ]
    }
    assert admin(v6_range).status == "fail"
    assert all_ports(v6_range).status == "pass"
    udp_all = {
        "IpPermissions": [
            {
                "IpProtocol": "udp",
                "FromPort": 0,
                "ToPort": 65535,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ]
    }
    assert all_ports(udp_all).status == "fail"
    assert admin(udp_all).status == "pass"
    private = {"IpPermissions": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]}
    assert admin(private).status == "pass" and all_ports(private).status == "pass"


def test_admin_ports_opened_by_split_ranges_fail_through_the_connector(moto_url: str) -> None:
    ec2 = boto3.client("ec2", region_name=REGIONS[0], endpoint_url=moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]

    def group(name: str, *rules: dict[str, Any]) -> str:
        group_id = ec2.create_security_group(GroupName=name, Description=name,
                                             VpcId=vpc)["GroupId"]
        for rule in rules:  # one call per rule: they stay separate rules of one group
            ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[rule])
        return f"arn:aws:ec2:{REGIONS[0]}:123456789012:security-group/{group_id}"

    def tcp(port: int, **ranges: Any) -> dict[str, Any]:
        return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **ranges}

    halves = group("ssh-halves", tcp(22, IpRanges=[{"CidrIp": "0.0.0.0/1"}]),
                   tcp(22, IpRanges=[{"CidrIp": "128.0.0.0/1"}]))
    v6 = group("rdp-v6-halves", tcp(3389, Ipv6Ranges=[{"CidrIpv6": "::/1"},
                                                      {"CidrIpv6": "8000::/1"}]))
    quarters = group("all-quarters", *({"IpProtocol": "-1",
                                        "IpRanges": [{"CidrIp": f"{q}.0.0.0/2"}]}
                                       for q in (0, 64, 128, 192)))
    private = group("ssh-private", tcp(22, IpRanges=[{"CidrIp": "10.0.0.0/8"},
                                                      {"CidrIp": "192.168.0.0/16"}]))
    items = list(connectors.aws.collect(Settings(regions=REGIONS[:1], endpoint_url=moto_url)))
    status = {(o.check.id, o.subject): o.verdict.status for o in _outcomes(items)}
    admin = "aws.ec2.security_group_admin_ports_closed_to_internet"
    every = "aws.ec2.security_group_all_ports_closed_to_internet"
    assert [status[(admin, g)] for g in (halves, v6, quarters, private)] == [
        "fail", "fail", "fail", "pass"]
    assert [status[(every, g)] for g in (halves, quarters)] == ["pass", "fail"]
