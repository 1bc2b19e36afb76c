"""Okta users: a person's own record where Okta is the identity provider; an admin role is
privilege; an active factor is MFA. Whether a user can sign in follows its Okta status."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import FETCH_ERRORS
from collector.people.identities import Identity, PersonFacts, adapter, email, identifiers

# Okta statuses in which the user can sign in (an expired password or a lockout is one
# step away from it).
CAN_SIGN_IN = frozenset({"ACTIVE", "PASSWORD_EXPIRED", "LOCKED_OUT", "RECOVERY"})


@adapter("okta.user", idp=True)
def okta_user(key: str, user: dict[str, Any]) -> Iterator[Identity]:
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    login = profile.get("login")
    address = email(profile.get("email")) or email(login) or key
    status = str(user.get("status") or "unknown")
    unread = user.get(FETCH_ERRORS) or {}
    factors = user.get("factors")
    mfa = (None if "factors" in unread or not isinstance(factors, list)
           else any(isinstance(f, dict) and f.get("status") == "ACTIVE" for f in factors))
    roles = tuple(str(r) for r in user.get("adminRoles") or [])
    active = status in CAN_SIGN_IN
    yield Identity(
        kind="okta.user", key=key, label=address,
        identifiers=identifiers(emails=[address, login], logins=[login], okta=user.get("id")),
        active=active, why_active=f"can sign in ({status})" if active else "",
        privileged=bool(roles), privileges=roles, mfa=mfa,
        person=PersonFacts(email=address, status=status.lower(),
                           status_changed=user.get("statusChanged")))
