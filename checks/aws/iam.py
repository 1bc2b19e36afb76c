"""IAM: the root user, how people and machines authenticate, and who holds full admin rights."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checks.registry import check
from checks.timestamps import days_since
from collector.model import Verdict, errored, failed, not_applicable, passed

MAX_CREDENTIAL_AGE_DAYS = 90
MIN_PASSWORD_LENGTH = 14
MIN_PASSWORD_REUSE_PREVENTION = 24
ADMINISTRATOR_ACCESS = "iam::aws:policy/AdministratorAccess"  # the ARN after arn:<partition>:


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from _as_list(document.get("Statement"))


def grants_full_admin(document: dict[str, Any]) -> bool:
    """An Allow of every action on every resource, conditions or not (a condition narrows who
    may use it, not what it grants)."""
    return any(
        statement.get("Effect") == "Allow"
        and {"*", "*:*"} & set(_as_list(statement.get("Action")))
        and "*" in _as_list(statement.get("Resource"))
        for statement in _statements(document)
    )


def _any_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def _active_keys(user: dict[str, Any]) -> list[dict[str, Any]]:
    return [key for key in user["credential_report"]["access_keys"] if key["active"]]


@check(
    "aws.iam.root_account_mfa_enabled",
    resource="aws.iam.account",
    title="The root user signs in with MFA",
    controls={
        "A.8.2": "the root user holds unrestricted rights; MFA guards that privileged access",
        "A.8.5": "MFA on the account's most powerful sign-in is secure authentication",
    },
    severity="critical",
    remediation="Sign in as root and assign an MFA device (preferably a hardware or passkey "
                "authenticator) under Security credentials.",
    needs=("summary",),
)
def root_account_mfa_enabled(account: dict[str, Any]) -> Verdict:
    if account["summary"].get("AccountMFAEnabled") == 1:
        return passed("root user has MFA enabled")
    return failed("root user has no MFA device")


@check(
    "aws.iam.root_account_has_no_access_keys",
    resource="aws.iam.account",
    title="The root user has no access keys",
    controls={
        "A.8.2": "root keys give unrestricted, unattributable API access that cannot be scoped",
        "A.5.17": "long-lived root secrets should not exist as authentication information",
    },
    severity="critical",
    remediation="Delete the root user's access keys; use IAM roles for automation instead.",
    needs=("summary",),
)
def root_account_has_no_access_keys(account: dict[str, Any]) -> Verdict:
    if account["summary"].get("AccountAccessKeysPresent", 0) == 0:
        return passed("root user has no access keys")
    return failed("root user has access keys")


@check(
    "aws.iam.password_policy_strong",
    resource="aws.iam.password_policy",
    title="The account password policy requires long, non-reused passwords",
    controls={
        "A.5.17": "the password policy is the rule set for the quality of IAM passwords",
    },
    severity="medium",
    remediation=f"Set the IAM password policy to a minimum length of {MIN_PASSWORD_LENGTH} and "
                f"prevent reuse of the last {MIN_PASSWORD_REUSE_PREVENTION} passwords.",
    needs=("policy",),
)
def password_policy_strong(data: dict[str, Any]) -> Verdict:
    policy = data["policy"]
    if policy is None:
        return failed("no password policy is set: AWS defaults allow 8-character passwords")
    gaps = []
    length = policy.get("MinimumPasswordLength", 0)
    if length < MIN_PASSWORD_LENGTH:
        gaps.append(f"minimum length {length} < {MIN_PASSWORD_LENGTH}")
    reuse = policy.get("PasswordReusePrevention", 0)
    if reuse < MIN_PASSWORD_REUSE_PREVENTION:
        gaps.append(f"reuse prevention {reuse} < {MIN_PASSWORD_REUSE_PREVENTION}")
    if gaps:
        return failed("; ".join(gaps))
    return passed(f"minimum length {length}, last {reuse} passwords cannot be reused")


@check(
    "aws.iam.user_console_mfa_enabled",
    resource="aws.iam.user",
    title="IAM users with a console password have MFA",
    controls={"A.8.5": "a password alone is not secure authentication for console access"},
    severity="high",
    remediation="Enable an MFA device for the user, or remove the console password if the user "
                "does not sign in.",
    needs=("credential_report",),
)
def user_console_mfa_enabled(user: dict[str, Any]) -> Verdict:
    report = user["credential_report"]
    if not report["password_enabled"]:
        return not_applicable("no console password")
    if report["mfa_active"]:
        return passed("console password with MFA")
    return failed("console password without MFA")


@check(
    "aws.iam.user_access_keys_rotated",
    resource="aws.iam.user",
    title=f"Active access keys are younger than {MAX_CREDENTIAL_AGE_DAYS} days",
    controls={"A.5.17": "regular rotation limits how long a leaked access key stays useful"},
    severity="medium",
    remediation="Create a new access key, move its users to it, then deactivate and delete the "
                "old one; prefer IAM roles or Identity Center for short-lived credentials.",
    needs=("credential_report",),
)
def user_access_keys_rotated(user: dict[str, Any]) -> Verdict:
    keys = _active_keys(user)
    if not keys:
        return not_applicable("no active access keys")
    stale = [f"key {key['slot']} created {key['last_rotated']}" for key in keys
             if days_since(key["last_rotated"]) > MAX_CREDENTIAL_AGE_DAYS]
    if stale:
        return failed(f"older than {MAX_CREDENTIAL_AGE_DAYS} days: " + ", ".join(stale))
    return passed(f"{len(keys)} active key(s), none older than {MAX_CREDENTIAL_AGE_DAYS} days")


@check(
    "aws.iam.user_unused_credentials_disabled",
    resource="aws.iam.user",
    title=f"No password or access key stays enabled after {MAX_CREDENTIAL_AGE_DAYS} days unused",
    controls={
        "A.5.18": "credentials nobody uses are access rights that should have been revoked",
        "A.5.16": "long-unused credentials mark stale identities that escaped deprovisioning",
    },
    severity="medium",
    remediation="Remove the console password or deactivate the access key; delete the user if "
                "nobody needs it.",
    needs=("credential_report",),
)
def user_unused_credentials_disabled(user: dict[str, Any]) -> Verdict:
    report = user["credential_report"]
    # A credential never used is judged from when it was set, so new ones get their grace time.
    dated: list[tuple[str, str | None]] = []
    if report["password_enabled"]:
        dated.append(("password", report["password_last_used"]
                      or report["password_last_changed"] or report["user_creation_time"]))
    dated += [(f"access key {key['slot']}", key["last_used_date"] or key["last_rotated"])
              for key in _active_keys(user)]
    if not dated:
        return not_applicable("no enabled password or access key")
    if any(since is None for _, since in dated):
        return errored("the credential report gives no date for an enabled credential")
    unused = [f"{name} (last used or set {since})" for name, since in dated
              if days_since(since) > MAX_CREDENTIAL_AGE_DAYS]
    if unused:
        return failed(f"unused for over {MAX_CREDENTIAL_AGE_DAYS} days: " + ", ".join(unused))
    return passed(f"every enabled credential used or set within {MAX_CREDENTIAL_AGE_DAYS} days")


@check(
    "aws.iam.user_has_no_direct_admin_rights",
    resource="aws.iam.user",
    title="No IAM user holds full admin rights through a policy attached to the user itself",
    controls={
        "A.8.2": "privileged rights belong to reviewed groups or roles, not individual users",
    },
    severity="high",
    remediation="Detach AdministratorAccess (or the full-admin inline policy) from the user; "
                "grant admin through a group or an assumable role with MFA.",
)
def user_has_no_direct_admin_rights(user: dict[str, Any]) -> Verdict:
    direct = [p["PolicyName"] for p in user.get("AttachedManagedPolicies", [])
              if p["PolicyArn"].split(":", 2)[-1] == ADMINISTRATOR_ACCESS]
    direct += [p["PolicyName"] for p in user.get("UserPolicyList", [])
               if grants_full_admin(p.get("PolicyDocument") or {})]
    if direct:
        return failed("full admin attached to the user: " + ", ".join(direct))
    return passed("no full-admin policy attached to the user")


@check(
    "aws.iam.user_permissions_granted_through_groups",
    resource="aws.iam.user",
    title="IAM users get permissions only through groups",
    controls={
        "A.5.18": "rights granted per group are provisioned and reviewed consistently per role",
        "A.5.15": "access follows role-based rules rather than one-off grants to individuals",
    },
    severity="low",
    remediation="Move the user's attached and inline policies to a group that matches the "
                "user's job, and add the user to it.",
)
def user_permissions_granted_through_groups(user: dict[str, Any]) -> Verdict:
    direct = [p["PolicyName"] for p in user.get("AttachedManagedPolicies", [])]
    direct += [f"{p['PolicyName']} (inline)" for p in user.get("UserPolicyList", [])]
    if direct:
        return failed("policies attached to the user: " + ", ".join(direct))
    return passed("no policies attached to the user")


@check(
    "aws.iam.policy_grants_no_full_admin",
    resource="aws.iam.policy",
    title="No customer-managed policy allows every action on every resource",
    controls={
        "A.5.15": "a wildcard *:* policy defeats least-privilege access control rules",
        "A.8.2": "whoever gets this policy attached holds unrestricted privileged rights",
    },
    severity="high",
    remediation="Replace the policy's Action \"*\" on Resource \"*\" with the actions and "
                "resources its holders need; keep full admin to AWS's AdministratorAccess on a "
                "few reviewed roles.",
)
def policy_grants_no_full_admin(policy: dict[str, Any]) -> Verdict:
    version = policy.get("DefaultVersion") or {}
    document = version.get("Document")
    if not isinstance(document, dict):
        return errored("the policy's default version document was not collected")
    if grants_full_admin(document):
        attached = policy.get("AttachmentCount", 0)
        return failed(f"allows * on * (attached to {attached} principal(s))")
    return passed("no statement allows * on *")


@check(
    "aws.iam.role_trust_policy_not_public",
    resource="aws.iam.role",
    title="No role can be assumed by any AWS principal without a condition",
    controls={
        "A.5.15": "a role that anyone can assume grants access to unknown external identities",
    },
    severity="critical",
    remediation="Name the trusted accounts, roles or services in the trust policy's Principal, "
                "or restrict \"*\" with conditions such as aws:PrincipalOrgID or sts:ExternalId.",
)
def role_trust_policy_not_public(role: dict[str, Any]) -> Verdict:
    public = [
        statement for statement in _statements(role.get("AssumeRolePolicyDocument") or {})
        if statement.get("Effect") == "Allow"
        and not statement.get("Condition")
        and _any_principal(statement.get("Principal"))
    ]
    if public:
        return failed("trust policy allows any principal without a condition")
    return passed("trust policy names its principals or conditions them")

