"""Cloud KMS keys: rotation, and who may use them."""

from __future__ import annotations

from typing import Any

from checks.gcp._policy import public_grants
from checks.registry import check
from collector.model import Verdict, failed, not_applicable, passed

KEY = "gcp.kms.crypto_key"
MAX_ROTATION_DAYS = 90


@check(
    "gcp.kms_key_rotation_90_days",
    resource=KEY,
    title=f"Symmetric KMS keys rotate automatically within {MAX_ROTATION_DAYS} days",
    controls={"A.8.24": "key management limits how much data one key version protects and "
                        "how long a leaked version stays useful"},
    severity="medium",
    remediation=f"Set a rotation period of at most {MAX_ROTATION_DAYS} days (gcloud kms keys "
                "update --rotation-period=90d --next-rotation-time=...).",
)
def kms_key_rotation_90_days(data: dict[str, Any]) -> Verdict:
    key = data["resource"]
    if key["purpose"] != "ENCRYPT_DECRYPT":
        return not_applicable(f"a {key['purpose']} key, which Cloud KMS does not rotate")
    period = key.get("rotationPeriod")
    if period is None:
        return failed("no rotation period: the key is never rotated automatically")
    days = float(str(period).removesuffix("s")) / 86400
    if days > MAX_ROTATION_DAYS:
        return failed(f"rotates every {days:g} days, more than {MAX_ROTATION_DAYS}")
    return passed(f"rotates every {days:g} days")


@check(
    "gcp.kms_key_not_public",
    resource=KEY,
    title="No KMS key grants a role to allUsers or allAuthenticatedUsers",
    controls={"A.8.24": "a key anyone may use protects nothing that it encrypts",
              "A.8.3": "decryption is restricted to the principals that own the data"},
    severity="critical",
    remediation="Remove allUsers and allAuthenticatedUsers from the key's IAM policy.",
    needs=("iamPolicy",),
)
def kms_key_not_public(data: dict[str, Any]) -> Verdict:
    grants = public_grants(data, required=False)
    if grants:
        return failed("the key is public: " + "; ".join(grants))
    return passed("no role is granted to allUsers or allAuthenticatedUsers")
