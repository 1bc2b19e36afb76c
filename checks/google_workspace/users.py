"""Users: who signs in with a second factor, who administers, and who no longer signs in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed

USER = "google_workspace.user"
MAX_INACTIVE_DAYS = 90
# The Directory API's lastLoginTime of a user who has never signed in.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


def _missing(user: dict[str, Any], *names: str) -> Verdict | None:
    absent = [name for name in names if not isinstance(user.get(name), bool)]
    return errored(f"{', '.join(absent)} missing from the user record") if absent else None


def _cannot_sign_in(user: dict[str, Any]) -> str | None:
    if user["suspended"]:
        return "suspended: cannot sign in"
    if user["archived"]:
        return "archived: cannot sign in"
    return None


def _flag_of_active_user(user: dict[str, Any], field: str, yes: str, no: str) -> Verdict:
    """Pass or fail on a boolean of a user who can sign in."""
    if gap := _missing(user, "suspended", "archived", field):
        return gap
    if reason := _cannot_sign_in(user):
        return not_applicable(reason)
    return passed(yes) if user[field] else failed(no)


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 time of the Google APIs (`2024-05-01T09:30:00.000Z`), or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _days_ago(moment: datetime) -> int:
    return (datetime.now(UTC) - moment).days


@check(
    "google_workspace.user_2sv_enrolled",
    resource=USER,
    title="Every active user is enrolled in 2-Step Verification",
    controls={"A.8.5": "a second factor on every account that can sign in is secure "
                       "authentication beyond a password"},
    severity="high",
    remediation="Have the user enroll in 2-Step Verification (a security key or passkey "
                "preferably), or suspend the account if nobody uses it.",
)
def user_2sv_enrolled(user: dict[str, Any]) -> Verdict:
    return _flag_of_active_user(user, "isEnrolledIn2Sv", "enrolled in 2-Step Verification",
                                "active user not enrolled in 2-Step Verification")


@check(
    "google_workspace.admin_2sv_enrolled",
    resource=USER,
    title="Every administrator is enrolled in 2-Step Verification",
    controls={
        "A.8.2": "an administrator's account holds privileged access rights; a second factor "
                 "guards their use",
        "A.8.5": "a password alone is not secure authentication for an administrator",
    },
    severity="critical",
    remediation="Enroll the administrator in 2-Step Verification with a security key, or "
                "remove the admin role until they have.",
)
def admin_2sv_enrolled(user: dict[str, Any]) -> Verdict:
    if gap := _missing(user, "isAdmin", "isDelegatedAdmin", "suspended", "archived",
                       "isEnrolledIn2Sv"):
        return gap
    if not (user["isAdmin"] or user["isDelegatedAdmin"]):
        return not_applicable("not an administrator")
    if reason := _cannot_sign_in(user):
        return not_applicable(reason)
    role = "super admin" if user["isAdmin"] else "delegated admin"
    if user["isEnrolledIn2Sv"]:
        return passed(f"{role} enrolled in 2-Step Verification")
    return failed(f"{role} not enrolled in 2-Step Verification")


@check(
    "google_workspace.user_2sv_enforced",
    resource=USER,
    title="2-Step Verification is enforced for every active user",
    controls={"A.8.5": "enforcement makes the second factor mandatory at sign-in instead of a "
                       "choice each user may skip"},
    severity="high",
    remediation="Turn on 2-Step Verification enforcement for the user's org unit (or a group "
                "the user is in) under Security > Authentication > 2-Step Verification.",
)
def user_2sv_enforced(user: dict[str, Any]) -> Verdict:
    return _flag_of_active_user(user, "isEnforcedIn2Sv",
                                "2-Step Verification is enforced for the user",
                                "2-Step Verification is not enforced for the user")


@check(
    "google_workspace.inactive_user_suspended",
    resource=USER,
    title=f"Users who have not signed in for {MAX_INACTIVE_DAYS} days are suspended",
    controls={
        "A.5.18": "the access rights of an account nobody has used for "
                  f"{MAX_INACTIVE_DAYS} days are withdrawn by suspending it",
        "A.5.16": "an identity no longer in use is disabled as part of its life cycle",
    },
    severity="medium",
    remediation="Suspend the user (or delete the account once its data is transferred); "
                "review inactive accounts at least quarterly.",
)
def inactive_user_suspended(user: dict[str, Any]) -> Verdict:
    if gap := _missing(user, "suspended", "archived"):
        return gap
    if user["suspended"]:
        return passed("suspended")
    if user["archived"]:
        return passed("archived: cannot sign in")
    last = timestamp(user.get("lastLoginTime"))
    if last is None:
        return errored("lastLoginTime missing from the user record or not a timestamp")
    if last > NEVER:
        days = _days_ago(last)
        if days > MAX_INACTIVE_DAYS:
            return failed(f"active, last signed in {days} days ago")
        return passed(f"last signed in {days} days ago")
    created = timestamp(user.get("creationTime"))
    if created is None:
        return errored("never signed in, and creationTime is missing or not a timestamp")
    days = _days_ago(created)
    if days > MAX_INACTIVE_DAYS:
        return failed(f"active, never signed in since created {days} days ago")
    return passed(f"never signed in yet; created {days} days ago")
