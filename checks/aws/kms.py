"""KMS: customer-managed keys are rotated and not silently on their way to deletion."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, not_applicable, passed


@check(
    "aws.kms.key_rotation_enabled",
    resource="aws.kms.key",
    title="Customer-managed KMS keys rotate their key material automatically",
    controls={"A.8.24": "key management includes replacing key material on a fixed period"},
    severity="medium",
    remediation="Enable automatic key rotation on the key (EnableKeyRotation).",
    needs=("rotation_enabled",),
)
def key_rotation_enabled(key: dict[str, Any]) -> Verdict:
    # The connector reads rotation only where AWS can rotate: enabled symmetric KMS-made keys.
    if "rotation_enabled" not in key:
        return not_applicable(f"automatic rotation does not apply to a {key.get('KeySpec')} key "
                              f"in state {key.get('KeyState')} from {key.get('Origin')}")
    if key["rotation_enabled"]:
        return passed("automatic rotation enabled")
    return failed("automatic rotation disabled")


@check(
    "aws.kms.key_not_pending_deletion",
    resource="aws.kms.key",
    title="No customer-managed KMS key is scheduled for deletion",
    controls={
        "A.8.24": "destroying a key makes all data under it unreadable; key destruction must "
                  "be a reviewed decision",
    },
    severity="medium",
    remediation="If the key still protects data, cancel the deletion (CancelKeyDeletion); "
                "otherwise record the approval for destroying it.",
)
def key_not_pending_deletion(key: dict[str, Any]) -> Verdict:
    if key.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
        return failed(f"scheduled for deletion on {key.get('DeletionDate', 'an unknown date')}")
    return passed(f"key state {key.get('KeyState')}")
