"""Entra ID users: MFA registration (from the authentication-methods registration report
joined to each user), sign-in activity, and where administrators' accounts live."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from checks.timestamps import days_since, parse
from collector.model import Verdict, errored, failed, not_applicable, passed

MAX_UNUSED_DAYS = 90
REGISTRATION = "userRegistrationDetails"
SIGN_IN = "signInActivity"
# The sign-in times Graph keeps per user; the latest of them is the account's last use.
_SIGN_IN_TIMES = ("lastSignInDateTime", "lastNonInteractiveSignInDateTime",
                  "lastSuccessfulSignInDateTime")


def _flag(data: dict[str, Any], name: str) -> bool:
    """A true/false field; anything else (null, absent) cannot be judged."""
    value = data[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}, not true or false")
    return value


def _member(user: dict[str, Any]) -> bool:
    kind = user["userType"]
    if kind not in ("Member", "Guest"):
        raise ValueError(f"userType is {kind!r}, not Member or Guest")
    return kind == "Member"


def _unless_enabled_admin(user: dict[str, Any]) -> Verdict | None:
    """The verdict for a user an administrator check does not judge (disabled, no
    administrator, or not in the registration report), or None for an enabled administrator."""
    if not _flag(user, "accountEnabled"):
        return not_applicable("account disabled")
    registration = user[REGISTRATION]
    if registration is None:
        return errored("the registration report has no entry for this enabled user, so "
                       "whether it is an administrator is unknown")
    if not _flag(registration, "isAdmin"):
        return not_applicable("holds no administrator role")
    return None


def _mfa(registration: dict[str, Any]) -> Verdict:
    if _flag(registration, "isMfaRegistered"):
        methods = ", ".join(registration.get("methodsRegistered") or []) or "methods not named"
        return passed(f"registered for MFA ({methods})")
    return failed("not registered for MFA")


@check(
    "entra.user.mfa_registered",
    resource="entra.user",
    title="Enabled member users are registered for MFA",
    controls={
        "A.8.5": "a user who has registered no second factor can only sign in with a password, "
                 "which is not secure authentication",
        "A.5.17": "registration of MFA methods is the allocation of the authentication "
                  "information that Conditional Access or security defaults then require",
    },
    severity="high",
    remediation="Have the user register an authenticator (Microsoft Authenticator, FIDO2 key "
                "or Windows Hello) at https://aka.ms/mysecurityinfo, and require registration "
                "with a Conditional Access or registration campaign policy.",
    needs=(REGISTRATION,),
)
def mfa_registered(user: dict[str, Any]) -> Verdict:
    if not _flag(user, "accountEnabled"):
        return not_applicable("account disabled")
    if not _member(user):
        return not_applicable("guest account: its MFA is the home tenant's")
    registration = user[REGISTRATION]
    if registration is None:
        return errored("the registration report has no entry for this enabled user")
    return _mfa(registration)


@check(
    "entra.user.admin_mfa_registered",
    resource="entra.user",
    title="Every administrator is registered for MFA",
    controls={
        "A.8.2": "an administrator's account without a second factor puts privileged access "
                 "behind a password alone",
        "A.8.5": "privileged sign-ins need the strongest authentication the tenant offers",
    },
    severity="critical",
    remediation="Register a phishing-resistant method (FIDO2 key or Windows Hello) for the "
                "administrator before the next sign-in, and require MFA for every directory "
                "role with Conditional Access.",
    needs=(REGISTRATION,),
)
def admin_mfa_registered(user: dict[str, Any]) -> Verdict:
    return _unless_enabled_admin(user) or _mfa(user[REGISTRATION])


@check(
    "entra.user.unused_account_disabled",
    resource="entra.user",
    title=f"Enabled accounts unused for {MAX_UNUSED_DAYS} days are disabled",
    controls={
        "A.5.18": "access rights no longer used should be removed: an account nobody signs "
                  "in with still grants every right it holds",
        "A.5.16": "identities whose owners have left or never started are to be disabled "
                  "in the identity lifecycle",
    },
    severity="medium",
    remediation=f"Confirm with the account's owner or manager, then disable it (Block sign-in) "
                f"or delete it; review accounts unused for {MAX_UNUSED_DAYS} days with an "
                "access review.",
    needs=(SIGN_IN,),
)
def unused_account_disabled(user: dict[str, Any]) -> Verdict:
    if not _flag(user, "accountEnabled"):
        return not_applicable("account disabled")
    activity = user[SIGN_IN] or {}
    times = [activity[name] for name in _SIGN_IN_TIMES if activity.get(name)]
    if times:
        last = max(times, key=parse)
        idle = days_since(last)
        if idle > MAX_UNUSED_DAYS:
            return failed(f"enabled, last signed in {last} ({idle:.0f} days ago)")
        return passed(f"last signed in {last} ({idle:.0f} days ago)")
    created = user["createdDateTime"]
    if created is None:
        return failed("enabled, no sign-in recorded and no creation date (created before "
                      "Entra ID recorded one)")
    age = days_since(created)
    if age > MAX_UNUSED_DAYS:
        return failed(f"enabled, never signed in since its creation {age:.0f} days ago")
    return passed(f"created {age:.0f} days ago and not yet signed in")


@check(
    "entra.user.admin_cloud_only",
    resource="entra.user",
    title="Administrators' accounts are cloud-only, not synchronised from on-premises",
    controls={
        "A.8.2": "an administrator account synchronised from Active Directory can be taken "
                 "over by whoever controls on-premises AD, so privileged access would rest on "
                 "a second, weaker directory",
    },
    severity="high",
    remediation="Create a separate cloud-only account (user@<tenant>.onmicrosoft.com) for the "
                "administrator, assign the roles to it, and remove them from the synchronised "
                "account.",
    needs=(REGISTRATION,),
)
def admin_cloud_only(user: dict[str, Any]) -> Verdict:
    verdict = _unless_enabled_admin(user)
    if verdict is not None:
        return verdict
    # Graph leaves it null for accounts that were never synchronised.
    if user["onPremisesSyncEnabled"] is True:
        return failed("administrator synchronised from on-premises Active Directory")
    return passed("cloud-only administrator")
