"""AWS IAM Identity Center users: usable while they are assigned a permission set in some AWS
account (directly or through a group), which lets them sign in there; full admin through an
assigned permission set is their privilege. Identity Center's MFA settings cannot be read
through its API, so the identity provider's MFA is the one that counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from checks.aws.policy import (
    PolicyError,
    grants_full_admin,
    is_administrator_access,
    partition_of,
)
from collector.people.identities import Identity, adapter, identifiers


def _full_admin(permission_set: dict[str, Any]) -> bool:
    """AWS's AdministratorAccess, or an inline policy granting full admin. References to
    customer-managed policies name documents kept in each account's IAM, out of this
    evidence; an inline policy that cannot be read grants nothing that can be shown."""
    managed = [p.get("Arn") for p in permission_set.get("ManagedPolicies") or []
               if isinstance(p, dict)]
    if any(map(is_administrator_access, managed)):
        return True
    inline = permission_set.get("InlinePolicy")
    if inline is None:
        return False
    try:
        return grants_full_admin(
            inline, partition=partition_of(permission_set.get("PermissionSetArn")))
    except PolicyError:
        return False


def _assignment(entry: dict[str, Any]) -> str:
    """`AdministratorAccess in 123456789012 through group Admins`."""
    text = f"{entry.get('PermissionSetName') or entry.get('PermissionSetArn')} in " + str(
        entry.get("AccountId"))
    group = entry.get("Group")
    if isinstance(group, dict):
        text += f" through group {group.get('DisplayName') or group.get('GroupId')}"
    return text


@adapter("aws.identity_center.user")
def identity_center_user(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    name = str(user.get("UserName") or key.rsplit(":", 1)[-1])
    emails = [e.get("Value") for e in user.get("Emails") or [] if isinstance(e, dict)]
    admin = {s.get("PermissionSetArn") for s in user.get("PermissionSets") or []
             if isinstance(s, dict) and _full_admin(s)}
    # A disabled user cannot sign in, whatever it is assigned.
    assignments = [] if user.get("UserStatus") == "DISABLED" else [
        a for a in user.get("Assignments") or [] if isinstance(a, dict)]
    privileges = tuple(sorted({f"full admin in {a.get('AccountId')}" for a in assignments
                               if a.get("PermissionSetArn") in admin}))
    yield Identity(
        kind="aws.identity_center.user", key=key, label=f"{name} (Identity Center)",
        identifiers=identifiers(emails=[*emails, name], logins=[name]),
        active=bool(assignments),
        why_active="assigned " + "; ".join(sorted(map(_assignment, assignments)))
                   if assignments else "",
        privileged=bool(privileges), privileges=privileges, mfa=None)
