"""Users, each with its sign-in activity and its authentication-method registration details
(Graph keeps those in a report of their own, joined here by object id)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import FETCH_ERRORS, Resource, Scope
from connectors.entra.graph import MAX_PAGE, Graph, entity
from connectors.http import HttpError
from connectors.spool import KeyedSpool

KIND = "entra.user"
# /users returns a few contact fields unless asked: every field a check reads is named.
FIELDS = ("id", "userPrincipalName", "displayName", "mail", "accountEnabled", "userType",
          "createdDateTime", "onPremisesSyncEnabled", "externalUserState", "creationType")
SIGN_IN = "signInActivity"
REGISTRATION = "userRegistrationDetails"
# With signInActivity selected Graph serves at most 500 users a page.
SIGN_IN_PAGE = 500
# Graph's answer when the tenant's licence (Entra ID P1 or P2) does not cover sign-in activity.
UNLICENSED = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"


def key(user_id: str) -> str:
    return f"entra:user:{user_id}"


def users(graph: Graph, scope: Scope) -> Iterator[Resource]:
    with KeyedSpool() as registrations:
        unregistered = _registrations(graph, registrations)
        for page, missing in _user_pages(graph):
            errors = {**missing, REGISTRATION: unregistered} if unregistered else missing
            found = {} if unregistered else registrations.take([user["id"] for user in page])
            for user in page:
                user[REGISTRATION] = found.get(user["id"])
                if errors:
                    user[FETCH_ERRORS] = dict(errors)
                yield scope.resource(KIND, key(user["id"]), user)


def _registrations(graph: Graph, spool: KeyedSpool) -> str | None:
    """The registration report into `spool` by user id, or why it could not be read. Graph
    leaves disabled users out of it."""
    try:
        for page in graph.pages("reports/authenticationMethods/userRegistrationDetails",
                                "userRegistrationDetails.list", top=MAX_PAGE):
            spool.put((item["id"], item) for item in
                      (entity(i, "userRegistrationDetails.list") for i in page))
    except HttpError as exc:
        if exc.status == 0:
            raise
        return str(exc)
    return None


def _user_pages(graph: Graph) -> Iterator[tuple[list[dict[str, Any]], dict[str, str]]]:
    """Pages of users with the fields their checks need and, for each page, the fields that
    could not be had. A tenant without the licence for sign-in activity refuses the whole
    listing when it is selected: the users are then listed without it."""
    pages = graph.pages("users", "users.list", select=(*FIELDS, SIGN_IN), top=SIGN_IN_PAGE)
    missing: dict[str, str] = {}
    try:
        first = next(pages, None)
    except HttpError as exc:
        if exc.status != 403 or exc.code != UNLICENSED:
            raise
        missing = {SIGN_IN: f"the tenant's licence does not include sign-in activity "
                            f"(Entra ID P1 or P2): {exc}"}
        pages = graph.pages("users", "users.list", select=FIELDS, top=MAX_PAGE)
        first = next(pages, None)
    if first is None:
        return
    yield [entity(user, "users.list") for user in first], missing
    for page in pages:
        yield [entity(user, "users.list") for user in page], missing
