"""RDS DB instances: encryption, network exposure, backups, redundancy and patching.

Aurora (and Neptune and DocumentDB) instances belong to a cluster that owns their backups and
their spread across zones, so those checks do not judge cluster members.
"""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, not_applicable, passed

MIN_BACKUP_RETENTION_DAYS = 7


def _cluster(instance: dict[str, Any]) -> str | None:
    return instance.get("DBClusterIdentifier")


def _replica_source(instance: dict[str, Any]) -> str | None:
    return instance.get("ReadReplicaSourceDBInstanceIdentifier") or instance.get(
        "ReadReplicaSourceDBClusterIdentifier"
    )


@check(
    "aws.rds.db_instance_storage_encrypted",
    resource="aws.rds.db_instance",
    title="RDS DB instances encrypt their storage",
    controls={
        "A.8.24": "the database's storage, automated backups, snapshots and replicas are "
        "encrypted at rest with a KMS key",
    },
    severity="high",
    remediation="Encryption cannot be turned on in place: restore an encrypted copy of a "
    "snapshot into a new instance and move clients to it.",
)
def db_instance_storage_encrypted(instance: dict[str, Any]) -> Verdict:
    if instance.get("StorageEncrypted"):
        return passed(f"storage encrypted with {instance.get('KmsKeyId', 'a KMS key')}")
    return failed("storage is not encrypted")


@check(
    "aws.rds.db_instance_not_publicly_accessible",
    resource="aws.rds.db_instance",
    title="RDS DB instances are not publicly accessible",
    controls={
        "A.8.3": "a publicly accessible instance resolves to a public address, so the data "
        "behind it is one credential away from anyone on the internet",
        "A.8.20": "databases belong on private subnets: the setting gives the instance an "
        "internet-facing endpoint",
    },
    severity="high",
    remediation="Modify the instance with PubliclyAccessible off (and keep it on private "
    "subnets); reach it through the VPC, a VPN or a bastion.",
)
def db_instance_not_publicly_accessible(instance: dict[str, Any]) -> Verdict:
    if instance.get("PubliclyAccessible"):
        return failed("instance is publicly accessible")
    return passed("instance has no public endpoint")


@check(
    "aws.rds.db_instance_backup_retention_at_least_7_days",
    resource="aws.rds.db_instance",
    title="RDS DB instances keep automated backups for at least 7 days",
    controls={
        "A.8.13": "automated backups with point-in-time recovery are the instance's backup "
        "copies; 0 days means none are taken",
    },
    severity="medium",
    remediation=f"Set the backup retention period to {MIN_BACKUP_RETENTION_DAYS} days or more "
    "(up to 35).",
)
def db_instance_backup_retention_at_least_7_days(instance: dict[str, Any]) -> Verdict:
    if cluster := _cluster(instance):
        return not_applicable(f"backups are kept by DB cluster {cluster}")
    if source := _replica_source(instance):
        return not_applicable(f"read replica of {source}, whose backups hold the data")
    days = instance.get("BackupRetentionPeriod", 0)
    if days >= MIN_BACKUP_RETENTION_DAYS:
        return passed(f"automated backups kept {days} days")
    if days == 0:
        return failed("automated backups are off")
    return failed(f"automated backups kept only {days} days (< {MIN_BACKUP_RETENTION_DAYS})")


@check(
    "aws.rds.db_instance_multi_az",
    resource="aws.rds.db_instance",
    title="RDS DB instances run with a standby in another Availability Zone",
    controls={
        "A.8.14": "a Multi-AZ standby is a redundant copy of the database that takes over when "
        "its zone fails",
    },
    severity="medium",
    remediation="Modify the instance to be Multi-AZ (a standby instance or a Multi-AZ DB "
    "cluster deployment).",
)
def db_instance_multi_az(instance: dict[str, Any]) -> Verdict:
    if cluster := _cluster(instance):
        return not_applicable(f"zone redundancy is set by DB cluster {cluster}")
    if source := _replica_source(instance):
        return not_applicable(f"read replica of {source}: it is itself a redundant copy")
    if instance.get("MultiAZ"):
        return passed(f"standby in {instance.get('SecondaryAvailabilityZone', 'another zone')}")
    return failed(f"single instance in {instance.get('AvailabilityZone', 'one zone')}")


@check(
    "aws.rds.db_instance_auto_minor_version_upgrade_enabled",
    resource="aws.rds.db_instance",
    title="RDS DB instances apply minor engine versions automatically",
    controls={
        "A.8.8": "minor engine versions carry the engine's security fixes; applying them in "
        "the maintenance window closes known vulnerabilities without waiting on anyone",
    },
    severity="low",
    remediation="Turn on auto minor version upgrade for the instance, or show patching of "
    "the engine through change management instead.",
)
def db_instance_auto_minor_version_upgrade_enabled(instance: dict[str, Any]) -> Verdict:
    if instance.get("AutoMinorVersionUpgrade"):
        return passed("minor versions applied in the maintenance window")
    return failed(
        f"auto minor version upgrade off (engine {instance.get('Engine')} "
        f"{instance.get('EngineVersion')})"
    )
