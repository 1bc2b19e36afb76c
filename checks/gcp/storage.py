"""Cloud Storage buckets: who may read them, how access is decided, and old versions kept."""

from __future__ import annotations

from typing import Any

from checks.gcp._policy import public_grants
from checks.registry import check
from collector.model import Verdict, failed, passed

BUCKET = "gcp.storage.bucket"


@check(
    "gcp.storage_bucket_not_public",
    resource=BUCKET,
    title="No bucket grants a role to allUsers or allAuthenticatedUsers",
    controls={"A.8.3": "a bucket readable by anyone, or by any Google account, restricts "
                       "access to its information to nobody",
              "A.5.15": "access to the bucket follows no access rule when everyone holds it"},
    severity="critical",
    remediation="Remove allUsers and allAuthenticatedUsers from the bucket's IAM policy "
                "(gcloud storage buckets remove-iam-policy-binding), and enforce public access "
                "prevention on the bucket or its organization.",
    needs=("iamPolicy",),
)
def storage_bucket_not_public(data: dict[str, Any]) -> Verdict:
    grants = public_grants(data, required=True)
    if grants:
        return failed("the bucket is public: " + "; ".join(grants))
    return passed("no role is granted to allUsers or allAuthenticatedUsers")


@check(
    "gcp.storage_bucket_uniform_access",
    resource=BUCKET,
    title="Buckets use uniform bucket-level access",
    controls={"A.8.3": "with uniform access the bucket's IAM policy alone decides who reads "
                       "it; object ACLs, which no policy review sees, cannot open single "
                       "objects"},
    severity="medium",
    remediation="Turn on uniform bucket-level access (gcloud storage buckets update "
                "--uniform-bucket-level-access) after moving any object ACL grants to IAM.",
)
def storage_bucket_uniform_access(data: dict[str, Any]) -> Verdict:
    enabled = data["resource"]["iamConfiguration"]["uniformBucketLevelAccess"]["enabled"]
    if enabled is True:
        return passed("uniform bucket-level access is on")
    return failed("uniform bucket-level access is off: object ACLs also grant access")


@check(
    "gcp.storage_bucket_versioning",
    resource=BUCKET,
    title="Buckets keep noncurrent object versions",
    controls={"A.8.13": "an overwritten or deleted object can be restored from its "
                        "noncurrent version"},
    severity="low",
    remediation="Turn on object versioning (gcloud storage buckets update --versioning) with "
                "a lifecycle rule that removes noncurrent versions after the retention "
                "period.",
)
def storage_bucket_versioning(data: dict[str, Any]) -> Verdict:
    # The Storage API leaves `versioning` out of a bucket that never had it on.
    if (data["resource"].get("versioning") or {}).get("enabled") is True:
        return passed("object versioning is on")
    return failed("object versioning is off: an overwritten or deleted object is gone")
