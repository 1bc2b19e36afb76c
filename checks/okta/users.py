"""Okta users: an active factor for everyone who can sign in (administrators above all), and
accounts unused for 90 days deactivated. A user's factors and roles are collected with it."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from checks.timestamps import days_since
from collector.model import Verdict, errored, failed, not_applicable, passed

MAX_INACTIVE_DAYS = 90
FACTORS, ADMIN_ROLES = "factors", "adminRoles"
# Statuses in which a user can sign in (a locked-out or expired password is one step away).
CAN_SIGN_IN = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"})
# Statuses Okta documents; anything else cannot be judged.
STATUSES = CAN_SIGN_IN | {"STAGED", "PROVISIONED", "SUSPENDED", "DEPROVISIONED"}


def _status(user: dict[str, Any]) -> str:
    status = user["status"]
    if status not in STATUSES:
        raise ValueError(f"status is {status!r}, not one Okta documents")
    return str(status)


def _unless_can_sign_in(user: dict[str, Any]) -> Verdict | None:
    status = _status(user)
    return None if status in CAN_SIGN_IN else not_applicable(f"{status}: cannot sign in")


def _active_factor(user: dict[str, Any]) -> Verdict:
    factors = user[FACTORS]
    if factors is None:
        return errored("the user's factors were not returned")
    active = sorted({f["factorType"] for f in factors if f.get("status") == "ACTIVE"})
    if active:
        return passed(f"active factors: {', '.join(active)}")
    pending = sorted({f"{f['factorType']} ({f.get('status')})" for f in factors})
    return failed("no active factor" + (f"; only {', '.join(pending)}" if pending else ""))


@check(
    "okta.user.mfa_enrolled",
    resource="okta.user",
    title="Every user who can sign in has an active MFA factor",
    controls={
        "A.8.5": "a user without an enrolled factor signs in with a password alone, which is "
                 "not secure authentication",
        "A.5.17": "an enrolled factor is the authentication information the sign-on and "
                  "authentication policies then require",
    },
    severity="high",
    remediation="Have the user enrol Okta Verify or a security key (Settings > Security "
                "Methods in the End-User Dashboard), and require enrolment with an "
                "authenticator enrolment policy.",
    needs=(FACTORS,),
)
def mfa_enrolled(user: dict[str, Any]) -> Verdict:
    return _unless_can_sign_in(user) or _active_factor(user)


@check(
    "okta.user.admin_mfa_enrolled",
    resource="okta.user",
    title="Every administrator has an active MFA factor",
    controls={
        "A.8.2": "an administrator without a second factor puts privileged access to the "
                 "identity provider behind a password alone",
        "A.8.5": "privileged sign-ins need the strongest authentication the org offers",
    },
    severity="critical",
    remediation="Enrol a phishing-resistant factor (Okta Verify with FastPass or a FIDO2 key) "
                "for the administrator now, and require MFA for the Okta Admin Console in its "
                "authentication policy.",
    needs=(FACTORS, ADMIN_ROLES),
)
def admin_mfa_enrolled(user: dict[str, Any]) -> Verdict:
    verdict = _unless_can_sign_in(user)
    if verdict is not None:
        return verdict
    roles = user[ADMIN_ROLES]
    if not roles:
        return not_applicable("holds no admin role")
    found = _active_factor(user)
    return Verdict(found.status, f"{', '.join(roles)}: {found.reason}")


@check(
    "okta.user.inactive_deactivated",
    resource="okta.user",
    title=f"Users who have not signed in for {MAX_INACTIVE_DAYS} days are deactivated",
    controls={
        "A.5.18": "access rights no longer used are to be removed: an account nobody signs "
                  "in with still grants every app assigned to it",
        "A.5.16": "identities whose owners left or never started are to be deactivated in "
                  "the identity lifecycle",
    },
    severity="medium",
    remediation=f"Confirm with the user's manager, then suspend or deactivate the user; "
                f"automate it with an Okta Workflows or lifecycle rule for {MAX_INACTIVE_DAYS} "
                "days without sign-in.",
)
def inactive_deactivated(user: dict[str, Any]) -> Verdict:
    status = _status(user)
    if status not in CAN_SIGN_IN:
        return not_applicable(f"{status}: cannot sign in")
    last = user["lastLogin"]
    if last:
        idle = days_since(last)
        if idle > MAX_INACTIVE_DAYS:
            return failed(f"{status}, last signed in {last} ({idle:.0f} days ago)")
        return passed(f"last signed in {last} ({idle:.0f} days ago)")
    since = user["activated"] or user["created"]
    if not since:
        return errored("never signed in, and neither its activation nor its creation is known")
    age = days_since(since)
    if age > MAX_INACTIVE_DAYS:
        return failed(f"{status}, never signed in since {since} ({age:.0f} days ago)")
    return passed(f"activated {age:.0f} days ago and not yet signed in")
