"""S3: buckets are encrypted, closed to the public, recoverable and logged; the account blocks
public access for every bucket, present and future.

A bucket's exposure depends on its own public access block and the account's, which overrides
it: the connector gives each bucket a copy of the account block, so that each bucket is judged
on what actually applies to it.
"""

from __future__ import annotations

from typing import Any

from checks.aws.policy import as_list, everyone, public_statements, statement_names, statements
from checks.registry import check
from collector.model import FETCH_ERRORS, Verdict, errored, failed, not_applicable, passed

BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                  "RestrictPublicBuckets")
BLOCK_FIELDS = ("public_access_block", "account_public_access_block")
LOG_DELIVERY = "logging.s3.amazonaws.com"


def _statements(bucket: dict[str, Any]) -> list[dict[str, Any]]:
    policy = bucket.get("policy")
    return [] if policy is None else statements(policy)


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    if statement.get("Effect") != "Deny" or not everyone(statement.get("Principal")):
        return False
    if not {"s3:*", "*"} & {a.lower() for a in as_list(statement.get("Action"))}:
        return False
    return any(
        key.lower() == "aws:securetransport"
        and [str(v).lower() for v in as_list(value)] == ["false"]
        for operator, clauses in (statement.get("Condition") or {}).items()
        if operator.lower() == "bool"
        for key, value in clauses.items()
    )


def _receives_access_logs(bucket: dict[str, Any]) -> bool:
    return any(
        statement.get("Effect") == "Allow"
        and LOG_DELIVERY in as_list((statement.get("Principal") or {}).get("Service"))
        for statement in _statements(bucket)
        if isinstance(statement.get("Principal"), dict)
    )


def _effective_block(bucket: dict[str, Any]) -> dict[str, bool]:
    own = bucket.get("public_access_block") or {}
    account = bucket.get("account_public_access_block") or {}
    return {name: bool(own.get(name) or account.get(name)) for name in BLOCK_SETTINGS}


def _unknown_blocks(bucket: dict[str, Any]) -> str | None:
    errors = bucket.get(FETCH_ERRORS) or {}
    unknown = [f"{field}: {errors[field]}" for field in BLOCK_FIELDS if field in errors]
    return "; ".join(unknown) or None


@check(
    "aws.s3.bucket_default_encryption_enabled",
    resource="aws.s3.bucket",
    title="S3 buckets encrypt new objects by default",
    controls={"A.8.24": "objects stored in the bucket are encrypted at rest without relying on "
                        "each writer to ask for it"},
    severity="high",
    remediation="Set default encryption on the bucket (PutBucketEncryption), preferably SSE-KMS "
                "with a customer-managed key.",
    needs=("encryption",),
)
def bucket_default_encryption_enabled(bucket: dict[str, Any]) -> Verdict:
    algorithms = sorted({
        rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        for rule in (bucket.get("encryption") or {}).get("Rules", [])
        if rule.get("ApplyServerSideEncryptionByDefault")
    })
    if algorithms:
        return passed(f"default encryption {', '.join(algorithms)}")
    return failed("no default encryption")


@check(
    "aws.s3.bucket_public_access_blocked",
    resource="aws.s3.bucket",
    title="Public access to S3 buckets is blocked (by the bucket or the account)",
    controls={"A.8.3": "with all four block settings on, neither an ACL nor a bucket policy can "
                       "open the bucket's data to the internet"},
    severity="high",
    remediation="Turn on all four S3 Block Public Access settings for the account "
                "(s3control PutPublicAccessBlock) or at least for this bucket.",
)
def bucket_public_access_blocked(bucket: dict[str, Any]) -> Verdict:
    off = [name for name, on in _effective_block(bucket).items() if not on]
    if not off:
        return passed("all four public access settings on (bucket or account level)")
    unknown = _unknown_blocks(bucket)
    if unknown:
        return errored(f"public access block could not be collected: {unknown}")
    return failed(f"off at both bucket and account level: {', '.join(off)}")


@check(
    "aws.s3.bucket_policy_not_public",
    resource="aws.s3.bucket",
    title="No S3 bucket policy grants access to anyone on the internet",
    controls={"A.8.3": "a policy that allows any principal without narrowing conditions exposes "
                       "the bucket's data to unauthenticated callers"},
    severity="critical",
    remediation="Name the principals in the policy, or narrow \"*\" with conditions such as "
                "aws:PrincipalOrgID or aws:SourceVpce; turn on RestrictPublicBuckets.",
    needs=("policy",),
)
def bucket_policy_not_public(bucket: dict[str, Any]) -> Verdict:
    policy = bucket.get("policy")
    public = [] if policy is None else public_statements(policy)
    if not public:
        return passed("no statement grants access to any principal")
    if _effective_block(bucket)["RestrictPublicBuckets"]:
        return passed(f"statements {statement_names(public)} allow any principal, but "
                      "RestrictPublicBuckets limits them to this account and AWS services")
    unknown = _unknown_blocks(bucket)
    if unknown:
        return errored(f"public statements found; whether they are restricted could not be "
                       f"collected: {unknown}")
    return failed(f"statements {statement_names(public)} allow any principal")


@check(
    "aws.s3.bucket_requires_tls",
    resource="aws.s3.bucket",
    title="S3 bucket policies refuse requests that are not sent over TLS",
    controls={"A.8.24": "data travelling to and from the bucket is always encrypted in transit"},
    severity="medium",
    remediation="Add a policy statement that denies s3:* to \"*\" when aws:SecureTransport is "
                "false.",
    needs=("policy",),
)
def bucket_requires_tls(bucket: dict[str, Any]) -> Verdict:
    if any(_denies_plain_http(s) for s in _statements(bucket)):
        return passed("policy denies requests without TLS")
    if bucket.get("policy") is None:
        return failed("no bucket policy, so plain HTTP requests are accepted")
    return failed("policy does not deny requests without TLS")


@check(
    "aws.s3.bucket_versioning_enabled",
    resource="aws.s3.bucket",
    title="S3 buckets keep previous versions of objects",
    controls={"A.5.33": "records overwritten or deleted by mistake or malice remain recoverable "
                        "as earlier versions"},
    severity="medium",
    remediation="Enable versioning on the bucket (PutBucketVersioning Status=Enabled), with a "
                "lifecycle rule that expires old versions.",
    needs=("versioning",),
)
def bucket_versioning_enabled(bucket: dict[str, Any]) -> Verdict:
    status = (bucket.get("versioning") or {}).get("Status")
    if status == "Enabled":
        return passed("versioning enabled")
    if status == "Suspended":
        return failed("versioning suspended: new writes overwrite without keeping versions")
    return failed("versioning never enabled")


@check(
    "aws.s3.bucket_access_logging_enabled",
    resource="aws.s3.bucket",
    title="S3 buckets record server access logs",
    controls={"A.8.15": "each request made to the bucket's data is recorded with its requester "
                        "and time"},
    severity="medium",
    remediation="Enable server access logging (PutBucketLogging) to a dedicated log bucket.",
    needs=("logging",),
)
def bucket_access_logging_enabled(bucket: dict[str, Any]) -> Verdict:
    target = bucket.get("logging")
    if target:
        return passed(f"access logs go to s3://{target.get('TargetBucket')}/"
                      f"{target.get('TargetPrefix', '')}")
    if "policy" in (bucket.get(FETCH_ERRORS) or {}):
        return errored("access logging off, and the policy that would show whether this is a "
                       f"log bucket could not be collected: {bucket[FETCH_ERRORS]['policy']}")
    # Logging the bucket that receives access logs would log its own log deliveries.
    if _receives_access_logs(bucket):
        return not_applicable("this bucket receives server access logs")
    return failed("server access logging off")


@check(
    "aws.s3.account_public_access_block_enabled",
    resource="aws.s3.account_public_access_block",
    title="S3 Block Public Access is on for the whole account",
    controls={"A.8.3": "no bucket in the account, present or future, can be opened to the "
                       "internet by an ACL or a bucket policy"},
    severity="high",
    remediation="Turn on all four Block Public Access settings for the account "
                "(s3control PutPublicAccessBlock).",
)
def account_public_access_block_enabled(account: dict[str, Any]) -> Verdict:
    block = account.get("public_access_block")
    if block is None:
        return failed("no account-level public access block")
    off = [name for name in BLOCK_SETTINGS if not block.get(name)]
    if off:
        return failed(f"off at account level: {', '.join(off)}")
    return passed("all four public access settings on for the account")
