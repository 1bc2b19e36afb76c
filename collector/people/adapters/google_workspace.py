"""Google Workspace users: a person's own record where Workspace is the identity provider;
super admins are its privileged accounts; 2-Step Verification is its MFA."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.people.identities import Identity, PersonFacts, adapter, email, identifiers


@adapter("google_workspace.user", idp=True)
def workspace_user(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    address = email(user.get("primaryEmail")) or key
    status = ("archived" if user.get("archived") else
              "suspended" if user.get("suspended") else "active")
    privileges = ("super admin",) if user.get("isAdmin") else ()
    yield Identity(
        kind="google_workspace.user", key=key, label=address,
        identifiers=identifiers(emails=[address], google_workspace=user.get("id")),
        active=status == "active", why_active="can sign in" if status == "active" else "",
        privileged=bool(privileges), privileges=privileges,
        mfa=bool(user.get("isEnrolledIn2Sv")),
        person=PersonFacts(email=address, status=status))
