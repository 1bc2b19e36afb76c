"""Networks, volumes and databases of the sample organisation.

The first region runs production (a logged `prod` VPC), a forgotten `staging` VPC and a partner
VPC whose flow log cannot deliver; the other regions hold a small analytics footprint. The
emulator gives every region a default VPC without flow logs whose default security group allows
all outbound traffic, as a fresh AWS account does: those failures are planted too.
"""

from __future__ import annotations

from typing import Any

from collector.demo.seed import ACCOUNT, Client, Planted, plant

WORLD_V4 = [{"CidrIp": "0.0.0.0/0"}]
WORLD_V6 = [{"CidrIpv6": "::/0"}]
FLOW_LOG_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vpc-flow-logs"
DEMO_PASSWORD = "Demo-only-password-1!"  # the emulator requires one; it is never collected

ADMIN_PORTS = "aws.ec2.security_group_admin_ports_closed_to_internet"
ALL_PORTS = "aws.ec2.security_group_all_ports_closed_to_internet"
DEFAULT_SG = "aws.ec2.default_security_group_restricts_all_traffic"
FLOW_LOGS = "aws.ec2.vpc_flow_logs_enabled"
VOLUME_ENCRYPTED = "aws.ec2.ebs_volume_encrypted"
EBS_DEFAULT = "aws.ec2.ebs_encryption_by_default_enabled"
RDS_ENCRYPTED = "aws.rds.db_instance_storage_encrypted"
RDS_PRIVATE = "aws.rds.db_instance_not_publicly_accessible"
RDS_BACKUPS = "aws.rds.db_instance_backup_retention_at_least_7_days"
RDS_MULTI_AZ = "aws.rds.db_instance_multi_az"
RDS_PATCHED = "aws.rds.db_instance_auto_minor_version_upgrade_enabled"


def _arn(region: str, resource: str) -> str:
    return f"arn:aws:ec2:{region}:{ACCOUNT}:{resource}"


def _tags(kind: str, name: str) -> list[dict[str, Any]]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def _tcp(port: int, **sources: Any) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, **sources}


def _from_group(port: int, group_id: str) -> dict[str, Any]:
    return _tcp(port, UserIdGroupPairs=[{"GroupId": group_id}])


def _vpc(ec2: Any, name: str, cidr: str) -> str:
    return ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_tags("vpc", name))["Vpc"]["VpcId"]


def _default_group(ec2: Any, vpc_id: str) -> str:
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    return groups[0]["GroupId"]


def _lock_default_group(ec2: Any, vpc_id: str) -> None:
    """Strip the default group of every rule, as CIS asks."""
    group = ec2.describe_security_groups(GroupIds=[_default_group(ec2, vpc_id)])["SecurityGroups"][
        0
    ]
    if group["IpPermissions"]:
        ec2.revoke_security_group_ingress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissions"]
        )
    if group["IpPermissionsEgress"]:
        ec2.revoke_security_group_egress(
            GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"]
        )


def _group(ec2: Any, vpc_id: str, name: str, description: str, rules: list[dict[str, Any]]) -> str:
    group_id = ec2.create_security_group(
        VpcId=vpc_id,
        GroupName=name,
        Description=description,
        TagSpecifications=_tags("security-group", name),
    )["GroupId"]
    if rules:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=rules)
    return group_id


def _volume(ec2: Any, region: str, name: str, *, encrypted: bool) -> str:
    volume = ec2.create_volume(
        AvailabilityZone=f"{region}a",
        Size=50,
        VolumeType="gp3",
        Encrypted=encrypted,
        TagSpecifications=_tags("volume", name),
    )
    return _arn(region, f"volume/{volume['VolumeId']}")


def _database(rds: Any, name: str, engine: str, **settings: Any) -> str:
    instance = rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine=engine,
        DBInstanceClass="db.m6g.large",
        AllocatedStorage=100,
        MasterUsername="app_admin",
        MasterUserPassword=DEMO_PASSWORD,
        Tags=[{"Key": "Name", "Value": name}],
        **settings,
    )["DBInstance"]
    return instance["DBInstanceArn"]


def _seed_defaults(ec2: Any, region: str, planted: Planted) -> None:
    """The default VPC that the emulator (like AWS) creates in every region, left untouched."""
    vpc_id = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0][
        "VpcId"
    ]
    plant(planted, FLOW_LOGS, _arn(region, f"vpc/{vpc_id}"))
    plant(planted, DEFAULT_SG, _arn(region, f"security-group/{_default_group(ec2, vpc_id)}"))


def _seed_production(client: Client, region: str, planted: Planted) -> None:
    ec2 = client("ec2", region)
    log_group = "/acme/vpc-flow-logs"
    client("logs", region).create_log_group(logGroupName=log_group)

    prod = _vpc(ec2, "prod", "10.0.0.0/16")
    ec2.create_flow_logs(
        ResourceType="VPC",
        ResourceIds=[prod],
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=log_group,
        DeliverLogsPermissionArn=FLOW_LOG_ROLE,
    )
    _lock_default_group(ec2, prod)

    staging = _vpc(ec2, "staging", "10.1.0.0/16")
    plant(planted, FLOW_LOGS, _arn(region, f"vpc/{staging}"))
    plant(planted, DEFAULT_SG, _arn(region, f"security-group/{_default_group(ec2, staging)}"))

    # The partner VPC's flow log points at a log group that was never created: it exists but
    # delivers nothing.
    partner = _vpc(ec2, "partner-link", "10.2.0.0/16")
    ec2.create_flow_logs(
        ResourceType="VPC",
        ResourceIds=[partner],
        TrafficType="REJECT",
        LogDestinationType="cloud-watch-logs",
        LogGroupName="/acme/partner",
        DeliverLogsPermissionArn=FLOW_LOG_ROLE,
    )
    plant(planted, FLOW_LOGS, _arn(region, f"vpc/{partner}"))
    _lock_default_group(ec2, partner)

    web = _group(
        ec2,
        prod,
        "web",
        "public HTTPS load balancer",
        [
            _tcp(443, IpRanges=WORLD_V4, Ipv6Ranges=WORLD_V6),
            _tcp(80, IpRanges=WORLD_V4, Ipv6Ranges=WORLD_V6),
        ],
    )
    app = _group(ec2, prod, "app", "application servers", [_from_group(8080, web)])
    _group(ec2, prod, "orders-db", "orders database", [_from_group(5432, app)])
    _group(
        ec2,
        prod,
        "vpn-admin",
        "admin access from the corporate VPN",
        [_tcp(22, IpRanges=[{"CidrIp": "10.8.0.0/16"}])],
    )

    bastion = _group(ec2, prod, "bastion-ssh", "SSH bastion", [_tcp(22, IpRanges=WORLD_V4)])
    plant(planted, ADMIN_PORTS, _arn(region, f"security-group/{bastion}"))

    jump = _group(ec2, staging, "windows-jump", "RDP jump host", [_tcp(3389, Ipv6Ranges=WORLD_V6)])
    plant(planted, ADMIN_PORTS, _arn(region, f"security-group/{jump}"))

    legacy = _group(
        ec2,
        staging,
        "legacy-any",
        "temporary: allow everything",
        [{"IpProtocol": "-1", "IpRanges": WORLD_V4}],
    )
    debug = _group(
        ec2,
        staging,
        "debug-all-tcp",
        "load test harness",
        [{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": WORLD_V4}],
    )
    for wide_open in (legacy, debug):
        plant(planted, ADMIN_PORTS, _arn(region, f"security-group/{wide_open}"))
        plant(planted, ALL_PORTS, _arn(region, f"security-group/{wide_open}"))

    # The scratch volume predates turning on encryption by default in this region.
    _volume(ec2, region, "orders-data", encrypted=True)
    plant(planted, VOLUME_ENCRYPTED, _volume(ec2, region, "legacy-scratch", encrypted=False))
    ec2.enable_ebs_encryption_by_default()

    rds = client("rds", region)
    _database(
        rds,
        "orders-db",
        "postgres",
        StorageEncrypted=True,
        PubliclyAccessible=False,
        BackupRetentionPeriod=14,
        MultiAZ=True,
        AutoMinorVersionUpgrade=True,
        DeletionProtection=True,
    )
    legacy_db = _database(
        rds,
        "legacy-reporting",
        "mysql",
        StorageEncrypted=False,
        PubliclyAccessible=True,
        BackupRetentionPeriod=0,
        MultiAZ=False,
        AutoMinorVersionUpgrade=False,
    )
    for check_id in (RDS_ENCRYPTED, RDS_PRIVATE, RDS_BACKUPS, RDS_MULTI_AZ, RDS_PATCHED):
        plant(planted, check_id, legacy_db)


def _seed_analytics(client: Client, region: str, planted: Planted) -> None:
    ec2 = client("ec2", region)
    plant(planted, EBS_DEFAULT, _arn(region, "ebs-encryption-by-default"))

    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][
        0
    ]["VpcId"]
    _group(
        ec2,
        default_vpc,
        "office-ssh",
        "SSH from the office",
        [_tcp(22, IpRanges=[{"CidrIp": "203.0.113.0/24"}])],
    )

    _volume(ec2, region, "analytics-app", encrypted=True)
    plant(planted, VOLUME_ENCRYPTED, _volume(ec2, region, "analytics-archive", encrypted=False))

    rds = client("rds", region)
    analytics = _database(
        rds,
        "analytics",
        "postgres",
        StorageEncrypted=True,
        PubliclyAccessible=False,
        BackupRetentionPeriod=3,
        MultiAZ=False,
        AutoMinorVersionUpgrade=True,
    )
    plant(planted, RDS_BACKUPS, analytics)
    plant(planted, RDS_MULTI_AZ, analytics)
    # A read replica's backups and redundancy are its source's: those checks do not apply.
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier="analytics-replica",
        SourceDBInstanceIdentifier="analytics",
        DBInstanceClass="db.m6g.large",
        PubliclyAccessible=False,
    )


def seed(client: Client, regions: list[str], planted: Planted) -> None:
    for region in regions:
        _seed_defaults(client("ec2", region), region, planted)
    _seed_production(client, regions[0], planted)
    for region in regions[1:]:
        _seed_analytics(client, region, planted)
