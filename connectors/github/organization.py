"""The organisation (its settings and the default permissions of its Actions workflow token),
its members with their role and whether they lack 2FA, and its outside collaborators with the
permission each holds on each repository."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from collector.model import ALL_REGIONS, FETCH_ERRORS, CollectionError, Resource, Scope
from connectors.github.api import GitHub
from connectors.http import HttpError, MalformedResponse, detail, paging

ORGANIZATION = "github.organization"
MEMBER = "github.member"
COLLABORATOR = "github.collaborator"
PAGE = 100  # the largest per_page the REST API allows
# What GET /orgs/{org} answers that the checks read. Counters and dates (public_repos,
# updated_at...) are left out: they change with every repository and would make a new
# version of unchanged settings. The settings are null to a token that is no owner's.
ORGANIZATION_FIELDS = (
    "login", "id", "name", "html_url", "two_factor_requirement_enabled",
    "default_repository_permission", "members_can_create_repositories",
    "members_can_create_public_repositories", "members_can_fork_private_repositories",
    "web_commit_signoff_required", "advanced_security_enabled_for_new_repositories",
    "dependabot_alerts_enabled_for_new_repositories",
    "secret_scanning_enabled_for_new_repositories",
    "secret_scanning_push_protection_enabled_for_new_repositories")
USER_FIELDS = ("login", "id", "type", "site_admin")
WORKFLOW_PERMISSIONS = "actions_workflow_permissions"
TWO_FACTOR_DISABLED = "two_factor_disabled"
ROLE = "role"
REPOSITORY_PERMISSIONS = "repository_permissions"


class SourceUnreachable(RuntimeError):
    """The organisation cannot be read with these credentials: nothing can be collected."""


def organization(github: GitHub, name: str) -> tuple[Scope, Resource]:
    """The organisation as the source's scope, and as a resource of its own."""
    try:
        answer = github.rest.get_json(f"orgs/{name}", operation="orgs.get")
        if not isinstance(answer, dict) or not isinstance(answer.get("login"), str):
            raise MalformedResponse("orgs.get", "the organisation has no login")
    except HttpError as exc:
        raise SourceUnreachable(f"organisation {name}: {exc}") from exc
    login = answer["login"]
    key = f"github:org:{login}"
    scope = Scope(provider="github", id=key, key=key)
    data = {field: answer.get(field) for field in ORGANIZATION_FIELDS}
    detail(data, WORKFLOW_PERMISSIONS, lambda: github.rest.get_json(
        f"orgs/{login}/actions/permissions/workflow",
        operation="actions.getGithubActionsDefaultWorkflowPermissionsOrganization"), absent=())
    return scope, scope.resource(ORGANIZATION, key, data)


def login_of(scope: Scope) -> str:
    return scope.key.removeprefix("github:org:")


def _users(github: GitHub, path: str, operation: str,
           params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for page in paging.link_header(github.rest, path, operation=operation,
                                   params={**params, "per_page": PAGE}):
        for user in page:
            if not isinstance(user, dict) or not isinstance(user.get("login"), str):
                raise MalformedResponse(operation, "a user in the answer has no login")
            yield {field: user.get(field) for field in USER_FIELDS}


def _logins(github: GitHub, path: str, operation: str,
            params: Mapping[str, Any]) -> tuple[set[str], str | None]:
    """The logins of a small listing (owners, members without 2FA), or why it failed."""
    try:
        return {user["login"] for user in _users(github, path, operation, params)}, None
    except HttpError as exc:
        return set(), str(exc)


def members(github: GitHub, scope: Scope) -> Iterator[Resource | CollectionError]:
    """Every member, with its role and whether GitHub lists it among those without 2FA
    (members?filter=2fa_disabled, which only owners may ask)."""
    org = login_of(scope)
    path, operation = f"orgs/{org}/members", "orgs.listMembers"
    owners, owners_failed = _logins(github, path, operation, {"role": "admin"})
    without_2fa, filter_failed = _logins(github, path, operation, {"filter": "2fa_disabled"})
    try:
        for user in _users(github, path, operation, {}):
            user[ROLE] = "admin" if user["login"] in owners else "member"
            user[TWO_FACTOR_DISABLED] = user["login"] in without_2fa
            errors = {name: message for name, message in
                      ((ROLE, owners_failed), (TWO_FACTOR_DISABLED, filter_failed)) if message}
            if errors:
                user[FETCH_ERRORS] = errors
            yield scope.resource(MEMBER, f"github:member:{user['login']}", user)
    except HttpError as exc:
        yield scope.error("orgs.members", ALL_REGIONS, (MEMBER,), str(exc))


def outside_collaborators(github: GitHub, scope: Scope,
                          permissions: Mapping[str, dict[str, str]],
                          permissions_failed: str | None) -> Iterator[Resource | CollectionError]:
    """Outside collaborators, each with {repository: permission} as the repositories'
    listings found them."""
    org = login_of(scope)
    try:
        for user in _users(github, f"orgs/{org}/outside_collaborators",
                           "orgs.listOutsideCollaborators", {}):
            if permissions_failed:
                user[FETCH_ERRORS] = {REPOSITORY_PERMISSIONS: permissions_failed}
            else:
                user[REPOSITORY_PERMISSIONS] = dict(sorted(
                    permissions.get(user["login"], {}).items()))
            yield scope.resource(COLLABORATOR, f"github:collaborator:{user['login']}", user)
    except HttpError as exc:
        yield scope.error("orgs.outside_collaborators", ALL_REGIONS, (COLLABORATOR,), str(exc))
