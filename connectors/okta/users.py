"""Users with their factors and admin roles. `/api/v1/users` leaves deprovisioned users out
unless a filter asks for them, so they are listed by a second, filtered listing.

Admin roles are read as Okta's IAM API offers them with the fewest calls: the users that hold
any role (`/api/v1/iam/assignees/users`, a page per 100 admins), then each of those users'
roles (`/api/v1/users/{id}/roles`); asking every user for roles would cost a call per user.
Factors are the one call made per user (not for deprovisioned users, who cannot sign in)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from collector.model import ALL_REGIONS, FETCH_ERRORS, CollectionError, Resource, Scope
from connectors.http import HttpClient, HttpError, MalformedResponse, paging
from connectors.okta.api import identified, objects

USER = "okta.user"
ROLE_ASSIGNMENT = "okta.role_assignment"
FACTORS = "factors"
ADMIN_ROLES = "adminRoles"
DEPROVISIONED = "DEPROVISIONED"
# The largest pages the listings accept.
USERS_PAGE, ASSIGNEES_PAGE = 200, 100
# What a user's evidence keeps: its lifecycle, not its whole profile (less personal data kept,
# and no new version when, say, a phone number changes).
USER_FIELDS = ("id", "status", "created", "activated", "statusChanged", "lastLogin",
               "lastUpdated", "passwordChanged", "type")
PROFILE_FIELDS = ("login", "email", "firstName", "lastName", "displayName", "employeeNumber")
# A factor's profile holds phone numbers and device names: only what it is and its state.
FACTOR_FIELDS = ("id", "factorType", "provider", "vendorName", "status", "created",
                 "lastUpdated")


def fatal(exc: HttpError) -> bool:
    """No answer, or the credentials refused (a revoked token, another org's token): nothing
    more of the org can be read."""
    return exc.status in (0, 401)


def users(api: HttpClient, scope: Scope, workers: int) -> Iterator[Resource | CollectionError]:
    """The role assignments first (a few), then every user with its factors and roles."""
    roles: dict[str, list[dict[str, Any]]] | None = {}
    try:
        roles = _roles(api)
    except HttpError as exc:
        if fatal(exc):
            raise
        roles = None
        roles_failure = str(exc)
        yield scope.error("iam.assignees", ALL_REGIONS, (ROLE_ASSIGNMENT,), roles_failure)
    if roles is not None:
        for user_id, held in roles.items():
            for role in held:
                yield scope.resource(ROLE_ASSIGNMENT, f"okta:role_assignment:{role['id']}",
                                     {**role, "userId": user_id})
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="annexa-okta") as pool:
        for query in ({"limit": USERS_PAGE},
                      {"limit": USERS_PAGE, "filter": f'status eq "{DEPROVISIONED}"'}):
            for page in objects(api, "/api/v1/users", "users.list", query):
                kept = [_user(user) for user in page]
                for user in kept:
                    if roles is None:
                        user.setdefault(FETCH_ERRORS, {})[ADMIN_ROLES] = (
                            f"the role assignments could not be read: {roles_failure}")
                    else:
                        user[ADMIN_ROLES] = sorted({r.get("type") or "" for r in
                                                    roles.get(user["id"], [])})
                for user, found in zip(kept, pool.map(lambda u: _factors(api, u), kept),
                                       strict=True):
                    if isinstance(found, str):
                        user.setdefault(FETCH_ERRORS, {})[FACTORS] = found
                    else:
                        user[FACTORS] = found
                    yield scope.resource(USER, f"okta:user:{user['id']}", user)


def _user(item: dict[str, Any]) -> dict[str, Any]:
    user = {name: item.get(name) for name in USER_FIELDS}
    profile = item.get("profile") if isinstance(item.get("profile"), dict) else {}
    user["profile"] = {name: profile[name] for name in PROFILE_FIELDS if name in profile}
    credentials = item.get("credentials")
    if isinstance(credentials, dict) and isinstance(credentials.get("provider"), dict):
        user["credentialsProvider"] = credentials["provider"]
    return user


def _factors(api: HttpClient, user: dict[str, Any]) -> list[dict[str, Any]] | str | None:
    """The user's enrolled factors; None for a deprovisioned user (not asked); or why they
    could not be read."""
    if user["status"] == DEPROVISIONED:
        return None
    operation = "factors.list"
    try:
        answer = api.get_json(f"/api/v1/users/{user['id']}/factors", operation=operation)
        if not isinstance(answer, list):
            raise MalformedResponse(operation, f"the answer is a {type(answer).__name__}, "
                                               "not a list")
        return [{name: factor.get(name) for name in FACTOR_FIELDS}
                for factor in (identified(f, operation) for f in answer)]
    except HttpError as exc:
        if fatal(exc):
            raise
        return str(exc)


def _roles(api: HttpClient) -> dict[str, list[dict[str, Any]]]:
    """user id -> the roles assigned to the user (directly or through a group)."""
    held: dict[str, list[dict[str, Any]]] = {}
    for page in paging.next_link(api, "/api/v1/iam/assignees/users",
                                 operation="assignees.users.list", items="value",
                                 link=("_links", "next", "href"),
                                 params={"limit": ASSIGNEES_PAGE}):
        for assignee in page:
            user_id = identified(assignee, "assignees.users.list")["id"]
            answer = api.get_json(f"/api/v1/users/{user_id}/roles", operation="users.roles.list")
            if not isinstance(answer, list):
                raise MalformedResponse("users.roles.list", "the answer is not a list")
            held[user_id] = [identified(role, "users.roles.list") for role in answer]
    return held
