"""Entra ID users: a person's own record where Entra is the identity provider (or, where another
IdP is the truth, an account that lends the person its object id, so that Azure role
assignments find them). The registration report says whether they hold an admin role and have
MFA registered; a user it leaves out has neither known."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import FETCH_ERRORS
from collector.people.identities import Identity, PersonFacts, adapter, email, identifiers

REGISTRATION = "userRegistrationDetails"


@adapter("entra.user", idp=True)
def entra_user(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    address = email(user.get("mail")) or email(user.get("userPrincipalName")) or key
    enabled = user.get("accountEnabled")
    status = "active" if enabled is True else "disabled" if enabled is False else "unknown"
    registration = user.get(REGISTRATION)
    unread = REGISTRATION in (user.get(FETCH_ERRORS) or {}) or not isinstance(registration,
                                                                              dict)
    privileges = ("directory admin role",) if not unread and registration.get("isAdmin") else ()
    yield Identity(
        kind="entra.user", key=key, label=address,
        identifiers=identifiers(emails=[user.get("mail"), user.get("userPrincipalName")],
                                entra=user.get("id")),
        active=None if enabled is None else enabled is True,
        why_active="account enabled" if enabled else "",
        privileged=bool(privileges), privileges=privileges,
        mfa=None if unread else bool(registration.get("isMfaRegistered")),
        human=user.get("userType") != "Service" if user.get("userType") else True,
        person=PersonFacts(email=address, status=status))
