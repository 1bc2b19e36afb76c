"""GitHub members and outside collaborators: usable while the membership or collaboration
exists. An organisation owner holds privilege, and so does a collaborator with admin on a
repository; GitHub's own 2FA is their MFA. A login matches a person only through the mapping
file or an identity provider's login, since GitHub rarely shows an email."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import FETCH_ERRORS
from collector.people.identities import Identity, adapter, identifiers


def _ids(user: dict[str, Any]) -> frozenset[str]:
    return identifiers(emails=[user.get("email")], github=user.get("login"))


@adapter("github.member")
def member(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    unread = user.get(FETCH_ERRORS) or {}
    owner = None if "role" in unread else user.get("role") == "admin"
    yield Identity(
        kind="github.member", key=key, label=str(user.get("login") or key),
        identifiers=_ids(user), active=True, why_active="organisation membership",
        # An owner whose role could not be read counts as one: never a privilege missed.
        privileged=owner is not False, privileges=("GitHub organisation owner",)
        if owner is not False else (),
        mfa=None if "two_factor_disabled" in unread else not user.get("two_factor_disabled"),
        human=user.get("type", "User") == "User")


@adapter("github.collaborator")
def collaborator(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    permissions = user.get("repository_permissions")
    unread = "repository_permissions" in (user.get(FETCH_ERRORS) or {})
    admin = sorted(repo for repo, level in (permissions or {}).items()
                   if str(level).upper() == "ADMIN")
    yield Identity(
        kind="github.collaborator", key=key, label=str(user.get("login") or key),
        identifiers=_ids(user), active=True, why_active="outside collaborator",
        privileged=unread or bool(admin),
        privileges=tuple(f"admin of {repo}" for repo in admin) or (
            ("repository permissions unread",) if unread else ()),
        human=user.get("type", "User") == "User")
