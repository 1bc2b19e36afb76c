"""IAM: the root user, how people and machines authenticate, and who holds full admin rights."""

from __future__ import annotations

from typing import Any

from checks.aws.policy import (
    ADMINISTRATOR_DOCUMENT,
    PolicyError,
    as_list,
    default_document,
    document,
    everyone,
    grants_full_admin,
    is_administrator_access,
    partition_of,
    public_statements,
    requires_mfa,
    statement_names,
    statements,
)
from checks.registry import check
from checks.timestamps import days_since
from collector.model import Verdict, errored, failed, not_applicable, passed

MAX_CREDENTIAL_AGE_DAYS = 90
MIN_PASSWORD_LENGTH = 14
MIN_PASSWORD_REUSE_PREVENTION = 24
INLINE_FIELDS = {"aws.iam.user": "UserPolicyList", "aws.iam.group": "GroupPolicyList",
                 "aws.iam.role": "RolePolicyList"}

def _documents(principal: dict[str, Any], inline: str,
               prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(name, document) of every policy attached to or inline in one user, group or role.
    AWS-managed policies are known by ARN (only AdministratorAccess grants full admin); a
    customer-managed one must carry its default version's document, joined on by the
    connector."""
    found = []
    for attached in as_list(principal.get("AttachedManagedPolicies")):
        name = f"{prefix}{attached.get('PolicyName')}"
        arn = str(attached.get("PolicyArn", ""))
        if is_administrator_access(arn):
            found.append((name, ADMINISTRATOR_DOCUMENT))
        elif arn.split(":")[4:5] == ["aws"]:
            continue  # another AWS-managed policy: none of them allows * on *
        elif attached.get("Document") is None:
            raise PolicyError(f"the document of attached policy {arn} was not collected")
        else:
            found.append((name, document(attached["Document"])))
    found += [(f"{prefix}{p.get('PolicyName')} (inline)", document(p.get("PolicyDocument")))
              for p in as_list(principal.get(inline))]
    return found


def _admin_paths(documents: list[tuple[str, dict[str, Any]]], partition: str) -> list[str]:
    """The policies that grant full admin; when only their combination does, all of them."""
    if not grants_full_admin(*(d for _, d in documents), partition=partition):
        return []
    alone = [name for name, d in documents if grants_full_admin(d, partition=partition)]
    return alone or ["the combination of " + ", ".join(name for name, _ in documents)]


def full_admin_paths(principal: dict[str, Any], kind: str = "aws.iam.user",
                     *, through_groups: bool = True) -> list[str]:
    """How a user, group or role holds full admin (empty if it does not): its own attached
    and inline policies and, for a user, those of the groups the connector joined on as
    `Groups`. Raises PolicyError when a document is missing or unreadable."""
    documents = _documents(principal, INLINE_FIELDS[kind])
    if kind == "aws.iam.user" and through_groups:
        if principal.get("GroupList") and "Groups" not in principal:
            raise PolicyError("the policies of the user's groups were not collected")
        for group in as_list(principal.get("Groups")):
            documents += _documents(group, "GroupPolicyList",
                                    prefix=f"group {group.get('GroupName')}: ")
    return _admin_paths(documents, partition_of(principal.get("Arn")))


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
    remediation="Detach the full-admin policy (AdministratorAccess, a customer-managed or an "
                "inline policy allowing * on *) from the user; grant admin through an "
                "assumable role with MFA.",
)
def user_has_no_direct_admin_rights(user: dict[str, Any]) -> Verdict:
    try:
        direct = full_admin_paths(user, through_groups=False)
    except PolicyError as exc:
        return errored(f"the user's policies could not be read: {exc}")
    if direct:
        return failed("full admin attached to the user: " + ", ".join(direct))
    return passed("no policy attached to the user grants full admin")


@check(
    "aws.iam.user_holds_no_full_admin",
    resource="aws.iam.user",
    title="No IAM user holds full admin rights, directly or through a group",
    controls={
        "A.8.2": "full admin held by an IAM user's long-lived password or keys is standing "
                 "privileged access; it belongs to a role assumed for the task, with MFA",
    },
    severity="high",
    remediation="Remove the user from the admin group or detach the policy; let the people "
                "who administer the account assume an admin role with MFA (or use IAM "
                "Identity Center) only when they need it.",
    needs=("Groups",),
)
def user_holds_no_full_admin(user: dict[str, Any]) -> Verdict:
    try:
        paths = full_admin_paths(user)
    except PolicyError as exc:
        return errored(f"the user's policies could not be read: {exc}")
    if paths:
        return failed("holds full admin through " + "; ".join(paths))
    return passed("no attached, inline or group policy grants the user full admin")


@check(
    "aws.iam.group_grants_no_full_admin",
    resource="aws.iam.group",
    title="No IAM group grants its members full admin rights",
    controls={
        "A.8.2": "every member of such a group holds unrestricted privileged rights with "
                 "their own long-lived credentials",
    },
    severity="high",
    remediation="Detach the full-admin policy from the group; grant admin through a role "
                "that its members assume with MFA when they need it.",
)
def group_grants_no_full_admin(group: dict[str, Any]) -> Verdict:
    try:
        paths = full_admin_paths(group, "aws.iam.group")
    except PolicyError as exc:
        return errored(f"the group's policies could not be read: {exc}")
    if paths:
        return failed("grants full admin through " + "; ".join(paths))
    return passed("no policy of the group grants full admin")


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
    remediation="Replace the policy's every-action grant (Action \"*\", or NotAction or "
                "NotResource with a few exceptions) with the actions and resources its holders "
                "need; keep full admin to AWS's AdministratorAccess on a few reviewed roles.",
)
def policy_grants_no_full_admin(policy: dict[str, Any]) -> Verdict:
    try:
        found = default_document(policy)
        if found is None:
            return errored("the policy's default version document was not collected")
        admin = grants_full_admin(found, partition=partition_of(policy.get("Arn")))
    except PolicyError as exc:
        return errored(f"the policy's default version could not be read: {exc}")
    if admin:
        attached = policy.get("AttachmentCount", 0)
        return failed(f"allows every action on every resource (attached to {attached} "
                      "principal(s))")
    return passed("no statement allows every action on every resource")


@check(
    "aws.iam.role_trust_policy_not_public",
    resource="aws.iam.role",
    title="No role can be assumed by any AWS principal without a narrowing condition",
    controls={
        "A.5.15": "a role that anyone can assume grants access to unknown external identities",
    },
    severity="critical",
    remediation="Name the trusted accounts, roles or services in the trust policy's Principal, "
                "or pin \"*\" to your organisation with aws:PrincipalOrgID (sts:ExternalId "
                "and aws:MultiFactorAuthPresent do not name who may assume it).",
)
def role_trust_policy_not_public(role: dict[str, Any]) -> Verdict:
    trust = role.get("AssumeRolePolicyDocument")
    if trust is None:
        return errored("the role's trust policy was not collected")
    try:
        public = public_statements(trust)
    except PolicyError as exc:
        return errored(f"the trust policy could not be read: {exc}")
    if public:
        return failed(f"trust statements {statement_names(public)} let any principal assume "
                      "the role without a condition naming who")
    return passed("trust policy names its principals or pins them with a condition")


def _assumers_without_mfa(trust: Any) -> tuple[list[str], bool]:
    """Who may assume the role without MFA, and whether any statement trusts federation
    (whose MFA the identity provider enforces, out of sight here)."""
    gaps: list[str] = []
    federated = False
    for statement in statements(trust):
        if str(statement.get("Effect", "")).lower() != "allow":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, dict) and set(principal) == {"Federated"}:
            federated = True
            continue
        if isinstance(principal, dict):
            gaps += [f"service {s}" for s in as_list(principal.get("Service"))]
            if not requires_mfa(statement):
                gaps += [f"principal {p}" for key in ("AWS", "CanonicalUser")
                         for p in as_list(principal.get(key))]
        elif not requires_mfa(statement):
            gaps.append("any principal" if everyone(principal) or "NotPrincipal" in statement
                        else f"principal {principal}")
    return gaps, federated


@check(
    "aws.iam.role_full_admin_requires_mfa",
    resource="aws.iam.role",
    title="A role that holds full admin can be assumed only with MFA",
    controls={
        "A.8.2": "full admin held by a role is privileged access; the results name every role "
                 "that holds it, and who may take it up",
        "A.8.5": "taking up unrestricted rights needs more than one stolen password or key",
    },
    severity="high",
    remediation="Add a Bool aws:MultiFactorAuthPresent \"true\" condition to every trust "
                "statement naming AWS principals; do not give full admin to roles that "
                "services assume (grant their workloads the actions they need).",
)
def role_full_adminrequires_mfa(role: dict[str, Any]) -> Verdict:
    trust = role.get("AssumeRolePolicyDocument")
    try:
        paths = full_admin_paths(role, "aws.iam.role")
        if not paths:
            return not_applicable("the role does not hold full admin")
        if trust is None:
            return errored(f"holds full admin through {'; '.join(paths)}; its trust policy "
                           "was not collected")
        gaps, federated = _assumers_without_mfa(trust)
    except PolicyError as exc:
        return errored(f"the role's policies could not be read: {exc}")
    held = f"holds full admin through {'; '.join(paths)}"
    if gaps:
        return failed(f"{held}; assumable without MFA by {', '.join(gaps)}")
    if federated and not any(str(s.get("Effect", "")).lower() == "allow"
                             and not (isinstance(s.get("Principal"), dict)
                                      and set(s["Principal"]) == {"Federated"})
                             for s in statements(trust)):
        return not_applicable(f"{held}; assumed only through federation, whose identity "
                              "provider enforces MFA out of sight of this check")
    return passed(f"{held}; every AWS principal that may assume it must use MFA")
