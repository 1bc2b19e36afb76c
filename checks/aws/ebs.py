"""EBS: volumes encrypted at rest, and encryption of new volumes enforced per region."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, passed


@check(
    "aws.ec2.ebs_volume_encrypted",
    resource="aws.ec2.volume",
    title="EBS volumes are encrypted at rest",
    controls={
        "A.8.24": "the volume's blocks, its snapshots and its traffic to the instance are "
        "encrypted with a KMS key",
    },
    severity="high",
    remediation="Snapshot the volume, copy the snapshot with encryption on, create a volume "
    "from the copy and swap it in; enable EBS encryption by default for new ones.",
)
def ebs_volume_encrypted(volume: dict[str, Any]) -> Verdict:
    if volume.get("Encrypted"):
        return passed(f"encrypted with {volume.get('KmsKeyId', 'the default EBS key')}")
    return failed("volume is not encrypted")


@check(
    "aws.ec2.ebs_encryption_by_default_enabled",
    resource="aws.ec2.ebs_encryption_default",
    title="EBS encryption by default is on in every region",
    controls={
        "A.8.24": "the region encrypts every new volume and snapshot copy, so none can be "
        "created in clear by mistake",
    },
    severity="medium",
    remediation="Turn on EBS encryption by default in the region (EC2 settings, or "
    "`aws ec2 enable-ebs-encryption-by-default`), ideally with a customer-managed key.",
)
def ebs_encryption_by_default_enabled(setting: dict[str, Any]) -> Verdict:
    if setting.get("EbsEncryptionByDefault"):
        return passed(f"on, default key {setting.get('KmsKeyId', 'not collected')}")
    return failed("new volumes are not encrypted by default")
