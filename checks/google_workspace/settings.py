"""Security settings of the Admin console, as the Cloud Identity Policy API reports them for
each org unit that has users (and each group with a policy of its own)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.google_workspace.policies import ORG_UNIT, POLICY, Judge, judge_setting
from checks.google_workspace.users import NEVER, timestamp
from checks.registry import ScopeView, scope_check
from collector.model import Verdict

USES = (ORG_UNIT, POLICY)
CUSTOMER = "google_workspace.customer"
MIN_PASSWORD_LENGTH = 12


def _not_enforced(value: dict[str, Any] | None) -> str | None:
    since = timestamp((value or {}).get("enforcedFrom"))
    if since is None or since <= NEVER:
        return "not enforced"
    if since > datetime.now(UTC):
        return f"enforcement only from {since:%Y-%m-%d}"
    return None


@scope_check(
    "google_workspace.two_step_verification_enforced",
    scope=CUSTOMER,
    uses=USES,
    title="2-Step Verification is enforced for every org unit with users",
    controls={"A.8.5": "the enforcement policy is the configured rule that every sign-in "
                       "needs a second factor"},
    severity="high",
    remediation="Security > Authentication > 2-Step Verification: turn on enforcement (from "
                "today) for the top-level org unit and remove exemptions of org units and "
                "groups.",
)
def two_step_verification_enforced(customer: ScopeView) -> Verdict:
    # Google enforces nothing unless told to: no policy means not enforced.
    return judge_setting(customer, "security.two_step_verification_enforcement",
                         _not_enforced, default={}, name="2-Step Verification enforcement")


def _weak_passwords(value: dict[str, Any] | None) -> str | None:
    rules = value or {}
    gaps = []
    if rules.get("allowedStrength") != "STRONG":
        gaps.append(f"strength {rules.get('allowedStrength', 'unset')}")
    length = rules.get("minimumLength")
    if not isinstance(length, int) or length < MIN_PASSWORD_LENGTH:
        gaps.append(f"minimum length {length if length is not None else 'unset'} < "
                    f"{MIN_PASSWORD_LENGTH}")
    if rules.get("enforceRequirementsAtLogin") is not True:
        gaps.append("not enforced at sign-in")
    if rules.get("allowReuse") is not False:
        gaps.append("reuse allowed")
    return ", ".join(gaps) or None


@scope_check(
    "google_workspace.password_policy_strong",
    scope=CUSTOMER,
    uses=USES,
    title=f"Passwords must be strong, at least {MIN_PASSWORD_LENGTH} characters and not reused",
    controls={"A.5.17": "the password policy is the rule set for the quality and reuse of "
                        "authentication information"},
    severity="medium",
    remediation=f"Security > Authentication > Password management: enforce strong passwords of "
                f"at least {MIN_PASSWORD_LENGTH} characters at next sign-in and disallow "
                "reuse, for every org unit.",
)
def password_policy_strong(customer: ScopeView) -> Verdict:
    # No default is documented for this setting: without a policy it is `error`, not a guess.
    return judge_setting(customer, "security.password", _weak_passwords,
                         name="the password policy")


def _turned_on(field: str, problem: str) -> Judge:
    return lambda value: problem if (value or {}).get(field) else None


@scope_check(
    "google_workspace.less_secure_apps_disabled",
    scope=CUSTOMER,
    uses=USES,
    title="Less secure apps cannot sign in",
    controls={"A.8.5": "less secure apps sign in with a password alone, around 2-Step "
                       "Verification"},
    severity="high",
    remediation="Security > Access and data control > Less secure apps: disable access for "
                "every org unit and group.",
)
def less_secure_apps_disabled(customer: ScopeView) -> Verdict:
    return judge_setting(
        customer, "security.less_secure_apps",
        _turned_on("allowLessSecureApps", "less secure apps allowed"),
        merge=True, default={"allowLessSecureApps": False},  # Google's documented default
        name="less secure apps access")


@scope_check(
    "google_workspace.super_admin_account_recovery_disabled",
    scope=CUSTOMER,
    uses=USES,
    title="Super admins cannot recover their own accounts by phone or email",
    controls={
        "A.5.17": "resetting a super admin's authentication information by a recovery phone "
                  "or address bypasses its second factor",
        "A.8.2": "self-recovery opens the most privileged accounts to whoever controls the "
                 "recovery phone or mailbox",
    },
    severity="high",
    remediation="Security > Authentication > Account recovery: turn off super admin account "
                "recovery; let another super admin reset a locked-out one.",
)
def super_admin_account_recovery_disabled(customer: ScopeView) -> Verdict:
    return judge_setting(
        customer, "security.super_admin_account_recovery",
        _turned_on("enableAccountRecovery", "self-recovery allowed"),
        merge=True, default={"enableAccountRecovery": False},  # Google's documented default
        name="super admin account recovery")
