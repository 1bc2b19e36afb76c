"""AWS IAM users: usable while they have a console password or an active access key; they
carry their own console MFA; full admin by any policy path is their privilege."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checks.aws.iam import full_admin_paths
from checks.aws.policy import PolicyError
from collector.model import FETCH_ERRORS
from collector.people.identities import Identity, adapter, identifiers

# Tags that operators use to name an IAM user's owner.
_OWNER_TAGS = ("email", "mail", "owner", "user")


def _full_admin(user: dict[str, Any]) -> bool:
    # Evidence collected before groups' policies were joined onto users names only the user's
    # own; a document that cannot be read at all is the user's checks' error to report.
    for through_groups in (True, False):
        try:
            return bool(full_admin_paths(user, through_groups=through_groups))
        except PolicyError:
            continue
    return False


@adapter("aws.iam.user")
def iam_user(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    name = str(user.get("UserName") or key.rsplit("/", 1)[-1])
    tags = {str(t.get("Key", "")).lower(): t.get("Value") for t in user.get("Tags") or []
            if isinstance(t, dict)}
    report = user.get("credential_report")
    unread = "credential_report" in (user.get(FETCH_ERRORS) or {}) or not isinstance(report,
                                                                                     dict)
    how: list[str] = []
    if not unread:
        if report.get("password_enabled"):
            how.append("console password")
        how += [f"access key {k.get('slot')}" for k in report.get("access_keys") or []
                if k.get("active")]
    admin = _full_admin(user)
    yield Identity(
        kind="aws.iam.user", key=key, label=name,
        identifiers=identifiers(emails=[name, *(tags.get(t) for t in _OWNER_TAGS)],
                                logins=[name]),
        active=None if unread else bool(how),
        why_active=", ".join(how),
        privileged=admin, privileges=("full admin",) if admin else (),
        mfa=None if unread else bool(report.get("mfa_active")))
