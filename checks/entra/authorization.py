"""The tenant's authorization policy: what every user and guest may do by default."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "entra.authorization_policy"
# Guest user role ids: the same as members, limited (the default), restricted.
GUEST_SAME_AS_MEMBERS = "a0b1b346-4d3e-4e8b-98f8-753987be4970"
GUEST_ROLES = {GUEST_SAME_AS_MEMBERS: "the same access as members",
               "10dae51f-b6af-4016-8d66-8c2a99b929b3": "limited access",
               "2af84b1e-32c8-42b7-82bc-daa82404023b": "restricted access"}
# The permission grant policy that lets users consent to any app for any permission.
LEGACY_CONSENT = "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"


@check(
    "entra.authorization_policy.users_cannot_register_applications",
    resource=KIND,
    title="Ordinary users cannot register applications",
    controls={
        "A.5.16": "an app registration is a new identity with its own credentials; created "
                  "by anyone, it escapes the identity lifecycle",
        "A.5.15": "who may create identities that then request access is an access control "
                  "rule the tenant sets",
    },
    severity="medium",
    remediation="Set Users can register applications to No (User settings), and grant the "
                "Application Developer role to those who need it.",
)
def users_cannot_register_applications(policy: dict[str, Any]) -> Verdict:
    if policy["defaultUserRolePermissions"]["allowedToCreateApps"]:
        return failed("every user may register applications")
    return passed("only users given a role may register applications")


@check(
    "entra.authorization_policy.user_consent_restricted",
    resource=KIND,
    title="Users cannot consent to applications for any permission",
    controls={
        "A.5.18": "a user's consent grants an application access rights to the "
                  "organisation's data without any approval",
        "A.5.15": "access to data through applications follows the tenant's consent rules, "
                  "not each user's choice",
    },
    severity="high",
    remediation="Set user consent to 'Allow user consent for apps from verified publishers, "
                "for selected permissions' or 'Do not allow user consent', and turn on the "
                "admin consent workflow.",
)
def user_consent_restricted(policy: dict[str, Any]) -> Verdict:
    granted = policy["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"]
    if LEGACY_CONSENT in granted:
        return failed("users may consent to any application for any permission")
    consent = ", ".join(p for p in granted if p.startswith("ManagePermissionGrantsForSelf"))
    return passed(f"user consent limited to: {consent}" if consent
                  else "users may not consent to applications")


@check(
    "entra.authorization_policy.guest_access_restricted",
    resource=KIND,
    title="Guests have less directory access than members",
    controls={
        "A.5.15": "guests see only what the tenant shares with them, not the whole "
                  "directory that members may read",
    },
    severity="medium",
    remediation="Set Guest user access to 'limited access' or 'restricted access' (External "
                "collaboration settings).",
)
def guest_access_restricted(policy: dict[str, Any]) -> Verdict:
    role = policy["guestUserRoleId"]
    if role == GUEST_SAME_AS_MEMBERS:
        return failed("guests have the same directory access as members")
    return passed(f"guests have {GUEST_ROLES.get(role, 'a custom role ' + str(role))}")
