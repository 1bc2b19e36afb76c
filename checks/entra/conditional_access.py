"""Tenant-wide sign-in rules: Conditional Access policies, or security defaults where the
tenant uses no Conditional Access, must require MFA of everyone and block legacy
authentication (protocols that cannot do MFA)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.registry import ScopeView, scope_check
from collector.model import Verdict, errored, failed, passed

POLICY = "entra.conditional_access_policy"
DEFAULTS = "entra.security_defaults"
# The client app types of legacy authentication: Exchange ActiveSync and other clients (IMAP,
# POP, SMTP AUTH, older Office clients).
LEGACY_CLIENTS = frozenset({"exchangeActiveSync", "other"})
MODERN_CLIENTS = frozenset({"browser", "mobileAppsAndDesktopClients"})
# Conditions that make a policy apply to some sign-ins only.
_RISK_CONDITIONS = ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels",
                    "insiderRiskLevels")
_EXCLUSIONS = ("excludeUsers", "excludeGroups", "excludeRoles")


def _security_defaults(view: ScopeView) -> dict[str, Any] | None:
    found = view.of(DEFAULTS)
    return found[0] if found else None


def _applies_everywhere(policy: dict[str, Any], clients: frozenset[str]) -> str | None:
    """Why `policy` does not cover every user, app and sign-in of `clients` (None if it
    does). Exclusions of users, groups, roles and locations are allowed; see _exclusions."""
    conditions = policy["conditions"]
    if "All" not in conditions["users"]["includeUsers"]:
        return "does not include all users"
    if "All" not in conditions["applications"]["includeApplications"]:
        return "does not include all cloud apps"
    if conditions["applications"].get("excludeApplications"):
        return "excludes cloud apps"
    types = set(conditions.get("clientAppTypes") or ["all"])
    if "all" not in types and not clients <= types:
        return f"applies to client apps {sorted(types)} only"
    for name in _RISK_CONDITIONS:
        if conditions.get(name):
            return f"applies only at {name} {conditions[name]}"
    platforms = conditions.get("platforms") or {}
    if platforms and "all" not in (platforms.get("includePlatforms") or []):
        return f"applies to platforms {platforms.get('includePlatforms')} only"
    locations = conditions.get("locations") or {}
    if locations and "All" not in (locations.get("includeLocations") or []):
        return "applies to some locations only"
    devices = (conditions.get("devices") or {}).get("deviceFilter") or {}
    if devices.get("mode") == "include":
        return "applies to filtered devices only"
    return None


def _exclusions(policy: dict[str, Any]) -> str:
    users = policy["conditions"]["users"]
    parts = [f"{name.removeprefix('exclude').lower()} {len(users[name])}"
             for name in _EXCLUSIONS if users.get(name)]
    if users.get("excludeGuestsOrExternalUsers"):
        parts.append("guests or external users")
    excluded_locations = (policy["conditions"].get("locations") or {}).get("excludeLocations")
    if excluded_locations:
        parts.append(f"locations {len(excluded_locations)}")
    return f"; excluded: {', '.join(parts)}" if parts else "; no exclusions"


def _requires_mfa(grant: dict[str, Any] | None) -> bool:
    """MFA (or an authentication strength) is required, not offered as one alternative."""
    if not grant:
        return False
    controls = set(grant.get("builtInControls") or [])
    strength = grant.get("authenticationStrength") is not None
    alternatives = len(controls) + strength + len(grant.get("customAuthenticationFactors") or [])
    wanted = "mfa" in controls or strength
    return wanted and (grant.get("operator") == "AND" or alternatives == 1)


def _blocks(grant: dict[str, Any] | None) -> bool:
    return bool(grant) and "block" in (grant.get("builtInControls") or [])


def _judge(view: ScopeView, what: str, clients: frozenset[str],
           grants: Callable[[dict[str, Any] | None], bool]) -> Verdict:
    defaults = _security_defaults(view)
    if defaults is None:
        return errored("security defaults were not collected")
    if defaults["isEnabled"]:
        return passed(f"security defaults are on: they {what} for every user")
    near: list[str] = []
    for policy in view.of(POLICY):
        if not grants(policy.get("grantControls")):
            continue
        gap = _applies_everywhere(policy, clients)
        name = policy["displayName"]
        if gap is None and policy["state"] == "enabled":
            return passed(f"enabled Conditional Access policy '{name}' covers all users "
                          f"and apps to {what}{_exclusions(policy)}")
        near.append(f"'{name}' {gap or 'is ' + policy['state']}")
    seen = f" (close: {'; '.join(near)})" if near else ""
    return failed(f"nothing is enforced to {what} for all users and apps: security "
                  f"defaults are off and no enabled Conditional Access policy covers them{seen}")


@scope_check(
    "entra.tenant.mfa_required_for_all_users",
    scope="entra.tenant",
    uses=(POLICY, DEFAULTS),
    title="A Conditional Access policy or security defaults require MFA of all users",
    controls={
        "A.8.5": "MFA enforced at every sign-in of every user is the tenant's secure "
                 "authentication; registration alone does not make anyone use it",
        "A.5.15": "Conditional Access is the rule set that grants access to the tenant's apps "
                  "only on MFA",
    },
    severity="critical",
    remediation="Create a Conditional Access policy for All users and All cloud apps that "
                "grants access only with Require multifactor authentication (exclude only "
                "the emergency access accounts), or turn on security defaults.",
)
def mfa_required_for_all_users(view: ScopeView) -> Verdict:
    # Legacy clients cannot do MFA at all: blocking them is the other check's part.
    return _judge(view, "require MFA", MODERN_CLIENTS, _requires_mfa)


@scope_check(
    "entra.tenant.legacy_authentication_blocked",
    scope="entra.tenant",
    uses=(POLICY, DEFAULTS),
    title="Legacy authentication is blocked",
    controls={
        "A.8.5": "legacy protocols (IMAP, POP, SMTP AUTH, ActiveSync basic auth) cannot do "
                 "MFA, so while they are allowed a password alone signs in",
    },
    severity="high",
    remediation="Create a Conditional Access policy for All users and All cloud apps with the "
                "client apps condition Exchange ActiveSync clients and Other clients, granting "
                "Block access (or turn on security defaults).",
)
def legacy_authentication_blocked(view: ScopeView) -> Verdict:
    return _judge(view, "block legacy authentication", LEGACY_CLIENTS, _blocks)
