"""GitHub's REST API v3 and GraphQL API as the github connector calls them: the real paths
(also under /api/v3 and /api/graphql, as Enterprise Server serves them), bearer tokens and
GitHub App installation tokens bought with an RS256 JWT, `Link` paging by page number (by
cursor only for Dependabot alerts, which refuse `page`), X-RateLimit-* headers on every answer
and GitHub's refusals: 404 for an organisation a token cannot see, "Branch not protected",
"Resource not accessible by integration", primary and secondary rate limits, and GraphQL's
RATE_LIMITED in a 200.

GraphQL queries are executed with graphql-core against a slice of GitHub's published schema
(github_schema.py), so a query that GitHub would refuse is refused here. What a token may
read follows a GitHub App's permissions (`Org.granted`); a field it may not read answers as
GitHub does, with null and a FORBIDDEN error at its path.

`start_demo()` seeds an organisation with planted gaps beside well-configured twins."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from collector.demo.emulators import DemoSource
from collector.demo.emulators.server import FakeApi, Tokens, ca_file, json_response, page_of

DOCS = "https://docs.github.com/rest"
# A GitHub App's permissions (read) that the connector's calls need, as the App settings name
# them; config/github/app-permissions.json asks an operator for the same.
ORGANIZATION_ADMINISTRATION = "organization_administration"
MEMBERS = "members"
ADMINISTRATION = "administration"
VULNERABILITY_ALERTS = "vulnerability_alerts"
METADATA = "metadata"
GRANTED = (ORGANIZATION_ADMINISTRATION, MEMBERS, ADMINISTRATION, VULNERABILITY_ALERTS, METADATA)
AUDIENCE = "github"
MAX_PER_PAGE = 100
_REST = r"(?:/api/v3)?"


@dataclass
class Ruleset:
    """A ruleset of the organisation, applying to the default branch of `repositories`
    (None: every repository). `rules` are (type, parameters) as GraphQL names them."""

    id: int
    name: str
    enforcement: str = "ACTIVE"
    repositories: set[str] | None = None
    rules: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    bypass: list[dict[str, Any]] = field(default_factory=list)

    def covers(self, repo: str) -> bool:
        return self.enforcement == "ACTIVE" and (self.repositories is None
                                                 or repo in self.repositories)


@dataclass
class Repo:
    """One repository. `protection` is the default branch's classic rule in GraphQL's field
    names (None: not protected). With `protection_restricted`, GraphQL refuses the rule
    (FORBIDDEN) and only REST answers for it: 403 if `protection_forbidden`, else the rule or
    404 "Branch not protected"."""

    name: str
    id: int
    visibility: str = "private"
    archived: bool = False
    fork: bool = False
    default_branch: str | None = "main"
    protection: dict[str, Any] | None = None
    protection_restricted: bool = False
    protection_forbidden: bool = False
    secret_scanning: str = "enabled"
    push_protection: str = "enabled"
    vulnerability_alerts: bool = True
    collaborators: dict[str, str] = field(default_factory=dict)  # outside login -> permission


@dataclass
class Org:
    login: str
    id: int = 1000
    two_factor_requirement_enabled: bool = True
    default_repository_permission: str = "read"
    members_can_create_public_repositories: bool = False
    default_workflow_permissions: str = "read"
    can_approve_pull_request_reviews: bool = False
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # login -> role, 2fa
    outside_collaborators: list[str] = field(default_factory=list)
    repos: list[Repo] = field(default_factory=list)
    rulesets: list[Ruleset] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # open Dependabot alerts
    granted: set[str] = field(default_factory=lambda: set(GRANTED))

    def repo(self, name: str) -> Repo | None:
        return next((r for r in self.repos if r.name.lower() == name.lower()), None)


def protection_rule(reviews: int | None = 1, *, force_pushes: bool = False,
                    admins: bool = True, deletions: bool = False) -> dict[str, Any]:
    """A classic branch protection rule for `main`, in GraphQL's field names."""
    return {"pattern": "main", "requiresApprovingReviews": reviews is not None,
            "requiredApprovingReviewCount": reviews, "dismissesStaleReviews": True,
            "requiresCodeOwnerReviews": False, "requireLastPushApproval": False,
            "allowsForcePushes": force_pushes, "allowsDeletions": deletions,
            "isAdminEnforced": admins, "requiresStatusChecks": True}


def user(login: str) -> dict[str, Any]:
    return {"login": login, "id": _user_id(login), "node_id": f"U_{login}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{_user_id(login)}",
            "html_url": f"https://github.com/{login}", "type": "User", "site_admin": False}


def _user_id(login: str) -> int:
    return 10_000 + sum(ord(c) * 31 ** i for i, c in enumerate(login)) % 9_000_000


def error(status: int, message: str, docs: str = "",
          headers: dict[str, str] | None = None) -> Response:
    return json_response({"message": message, "documentation_url": docs or DOCS,
                          "status": str(status)}, status, headers)


def secondary_limit(retry_after: int = 0) -> Callable[[Request], Response]:
    """GitHub's secondary rate limit: a 403 whose message says so, with Retry-After."""
    return lambda _request: error(
        403, "You have exceeded a secondary rate limit. Please wait a few minutes before you "
             "try again.", f"{DOCS}/overview/rate-limits-for-the-rest-api",
        {"Retry-After": str(retry_after)})


def too_many(retry_after: int = 0) -> Callable[[Request], Response]:
    return lambda _request: error(429, "API rate limit exceeded", "",
                                  {"Retry-After": str(retry_after)})


def primary_limit(_request: Request) -> Response:
    """The primary limit spent: 403 with X-RateLimit-Remaining 0 until the reset (now)."""
    return error(403, "API rate limit exceeded for installation ID 1.",
                 f"{DOCS}/overview/rate-limits-for-the-rest-api",
                 {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                  "X-RateLimit-Used": "5000", "X-RateLimit-Reset": str(int(time.time()))})


def graphql_rate_limited(_request: Request) -> Response:
    return json_response({"errors": [{"type": "RATE_LIMITED", "code": "graphql_rate_limit",
                                      "message": "API rate limit already exceeded for "
                                                 "installation ID 1."}]},
                         headers={"X-RateLimit-Remaining": "0",
                                  "X-RateLimit-Reset": str(int(time.time())),
                                  "X-RateLimit-Resource": "graphql"})


class Window:
    """The primary rate limit: `limit` calls per window of `seconds`, counted per token."""

    def __init__(self, limit: int = 5000, seconds: float = 3600) -> None:
        self.limit, self.seconds = limit, seconds
        self._used: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def spend(self, token: str) -> tuple[int, int]:
        """(remaining after this call, reset epoch); remaining -1 means refused. As GitHub's,
        a window resets at a whole second, the one its X-RateLimit-Reset names."""
        now = time.time()
        with self._lock:
            reset, used = self._used.get(token, (0, 0))
            if now >= reset:
                reset, used = math.ceil(now + self.seconds), 0
            if used >= self.limit:
                return -1, reset
            self._used[token] = (reset, used + 1)
            return self.limit - used - 1, reset


def install(api: FakeApi, org: Org, tokens: Tokens,
            apps: dict[int, tuple[str, int]] | None = None, window: Window | None = None) -> None:
    """GitHub's routes on `api` for `org`. `apps`: app id -> (public key PEM, installation
    id) of the GitHub Apps installed on it; personal tokens are admitted into `tokens` by the
    caller with the permissions they hold as scopes."""
    from collector.demo.emulators.github_graphql import GraphQL

    limits = window or Window()
    graph = GraphQL(org)
    org_path = rf"{_REST}/orgs/(?P<name>[^/]+)"

    def rated(handler: Callable[..., Response | Any]) -> Callable[..., Response]:
        def answer(request: Request, **kwargs: str) -> Response:
            token = request.headers.get("Authorization", "")
            remaining, reset = limits.spend(token)
            headers = {"X-RateLimit-Limit": str(limits.limit),
                       "X-RateLimit-Remaining": str(max(remaining, 0)),
                       "X-RateLimit-Reset": str(reset), "X-RateLimit-Used":
                           str(limits.limit - max(remaining, 0)),
                       "X-RateLimit-Resource": "graphql" if "graphql" in request.path else "core"}
            if remaining < 0:
                result: Any = error(403, "API rate limit exceeded for installation ID 1.",
                                    f"{DOCS}/overview/rate-limits-for-the-rest-api")
            else:
                result = handler(request, **kwargs)
            response = result if isinstance(result, Response) else json_response(result)
            response.headers.update(headers)
            return response
        answer.__name__ = handler.__name__
        return answer

    def grant(request: Request) -> tuple[Response | None, set[str]]:
        problem, granted = tokens.grant(request, AUDIENCE)
        if problem:
            return error(401, "Bad credentials", DOCS), set()
        if granted["subject"] != org.login:
            return None, set()
        return None, set(granted["scopes"]) & org.granted

    def visible(request: Request, name: str, *needs: str) -> tuple[Response | None, set[str]]:
        """The organisation as a token sees it: 404 unless it is the token's; 403 without
        one of `needs`."""
        refused, scopes = grant(request)
        if refused is not None:
            return refused, scopes
        if name.lower() != org.login.lower() or METADATA not in scopes:
            return error(404, "Not Found", f"{DOCS}/orgs/orgs#get-an-organization"), scopes
        if needs and not set(needs) & scopes:
            return error(403, "Resource not accessible by integration", DOCS), scopes
        return None, scopes

    def listing(request: Request, items: list[Any]) -> Response:
        """A page by `page` and `per_page` with GitHub's Link header."""
        try:
            per_page = min(int(request.args.get("per_page", 30)), MAX_PER_PAGE)
            page = max(int(request.args.get("page", 1)), 1)
        except ValueError:
            return error(422, "Invalid request.\n\nFor 'per_page', must be an integer.")
        size = min(per_page, api.page_size)
        start = (page - 1) * size
        links = []
        query = {k: v for k, v in request.args.items() if k != "page"}
        base = f"{api.url}{request.path}"
        if start + size < len(items):
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            last = (len(items) - 1) // size + 1
            links.append(f'<{base}?{urlencode({**query, "page": last})}>; rel="last"')
        if page > 1:
            links.append(f'<{base}?{urlencode({**query, "page": 1})}>; rel="first"')
        return json_response(items[start:start + size],
                             headers={"Link": ", ".join(links)} if links else None)

    @api.route("POST", rf"{_REST}/app/installations/(?P<installation>\d+)/access_tokens",
               name="apps.createInstallationAccessToken")
    @rated
    def access_token(request: Request, installation: str) -> Any:
        import jwt

        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        try:
            claims = jwt.decode(presented, options={"verify_signature": False})
            app = int(claims["iss"])
            key, installed = (apps or {})[app]
            claims = jwt.decode(presented, key, algorithms=["RS256"],
                                options={"require": ["iat", "exp", "iss"]})
        except (jwt.InvalidTokenError, KeyError, ValueError):
            return error(401, "A JSON web token could not be decoded", DOCS)
        if scheme.lower() != "bearer" or claims["exp"] - claims["iat"] > 600:
            return error(401, "'Expiration time' claim ('exp') is too far in the future", DOCS)
        if int(installation) != installed:
            return error(404, "Not Found", f"{DOCS}/apps/apps")
        token, seconds = "ghs_" + secrets.token_urlsafe(27), tokens.lifetime
        tokens.admit(token, AUDIENCE, org.login, GRANTED, seconds)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        return json_response({"token": token,
                              "expires_at": expires, "repository_selection": "all",
                              "permissions": {p: "read" for p in GRANTED}}, 201)

    @api.route("GET", org_path, name="orgs.get")
    @rated
    def get_org(request: Request, name: str) -> Any:
        refused, scopes = visible(request, name)
        if refused is not None:
            return refused
        body: dict[str, Any] = {
            "login": org.login, "id": org.id, "node_id": f"O_{org.login}",
            "url": f"{api.url}/orgs/{org.login}", "html_url": f"https://github.com/{org.login}",
            "name": org.login.title(), "public_repos": sum(r.visibility == "public"
                                                           for r in org.repos),
            "created_at": "2019-04-01T09:00:00Z", "updated_at": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "type": "Organization"}
        if ORGANIZATION_ADMINISTRATION in scopes:  # what only owners are shown
            body.update({
                "two_factor_requirement_enabled": org.two_factor_requirement_enabled,
                "default_repository_permission": org.default_repository_permission,
                "members_can_create_repositories": True,
                "members_can_create_public_repositories":
                    org.members_can_create_public_repositories,
                "members_can_fork_private_repositories": False,
                "web_commit_signoff_required": False,
                "advanced_security_enabled_for_new_repositories": True,
                "dependabot_alerts_enabled_for_new_repositories": True,
                "secret_scanning_enabled_for_new_repositories": True,
                "secret_scanning_push_protection_enabled_for_new_repositories": True,
                "total_private_repos": sum(r.visibility != "public" for r in org.repos)})
        return body

    @api.route("GET", rf"{org_path}/actions/permissions/workflow",
               name="actions.getGithubActionsDefaultWorkflowPermissionsOrganization")
    @rated
    def workflow(request: Request, name: str) -> Any:
        refused, _ = visible(request, name, ORGANIZATION_ADMINISTRATION)
        return refused or {"default_workflow_permissions": org.default_workflow_permissions,
                           "can_approve_pull_request_reviews":
                               org.can_approve_pull_request_reviews}

    @api.route("GET", rf"{org_path}/members", name="orgs.listMembers")
    @rated
    def members(request: Request, name: str) -> Any:
        refused, scopes = visible(request, name, MEMBERS)
        if refused is not None:
            return refused
        chosen = sorted(org.members)
        role = request.args.get("role", "all")
        if role == "admin":
            chosen = [m for m in chosen if org.members[m]["role"] == "admin"]
        elif role == "member":
            chosen = [m for m in chosen if org.members[m]["role"] == "member"]
        if request.args.get("filter") == "2fa_disabled":
            if ORGANIZATION_ADMINISTRATION not in scopes:
                return error(422, "Only owners can use this filter.", DOCS)
            chosen = [m for m in chosen if not org.members[m]["two_factor"]]
        return listing(request, [user(m) for m in chosen])

    @api.route("GET", rf"{org_path}/outside_collaborators",
               name="orgs.listOutsideCollaborators")
    @rated
    def outside(request: Request, name: str) -> Any:
        refused, _ = visible(request, name, MEMBERS)
        return refused or listing(request, [user(c) for c in sorted(org.outside_collaborators)])

    @api.route("GET", rf"{org_path}/repos", name="repos.listForOrg")
    @rated
    def repos(request: Request, name: str) -> Any:
        refused, scopes = visible(request, name)
        if refused is not None:
            return refused
        return listing(request, [_rest_repo(api, org, repo, ADMINISTRATION in scopes)
                                 for repo in sorted(org.repos, key=lambda r: r.name.lower())])

    @api.route("GET", rf"{org_path}/dependabot/alerts", name="dependabot.listAlertsForOrg")
    @rated
    def alerts(request: Request, name: str) -> Any:
        refused, _ = visible(request, name, VULNERABILITY_ALERTS)
        if refused is not None:
            return refused
        if "page" in request.args:
            return error(400, "Pagination using the `page` parameter is not supported.")
        chosen = [a for a in org.alerts
                  if request.args.get("state", "open") in ("", a["state"])
                  and request.args.get("severity") in (None, a["severity"])]
        try:
            page, cursor = page_of(chosen, request.args.get("after"),
                                   min(int(request.args.get("per_page", 30)), api.page_size))
        except ValueError:
            return error(400, "The cursor is not valid.")
        headers = None
        if cursor is not None:
            query = {k: v for k, v in request.args.items() if k != "after"}
            headers = {"Link": f'<{api.url}{request.path}?{urlencode({**query, "after": cursor})}>'
                               '; rel="next"'}
        return json_response([_alert(api, org, a) for a in page], headers=headers)

    @api.route("GET", rf"{_REST}/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/branches/"
                      r"(?P<branch>[^/]+)/protection", name="repos.getBranchProtection")
    @rated
    def protection(request: Request, owner: str, name: str, branch: str) -> Any:
        refused, scopes = visible(request, owner)
        repo = org.repo(name)
        if refused is not None or repo is None or repo.default_branch != branch:
            return refused or error(404, "Branch not found", DOCS)
        if repo.protection_forbidden or ADMINISTRATION not in scopes:
            return error(403, "Resource not accessible by integration",
                         f"{DOCS}/branches/branch-protection#get-branch-protection")
        if repo.protection is None:
            return error(404, "Branch not protected",
                         f"{DOCS}/branches/branch-protection#get-branch-protection")
        return _rest_protection(api, org, repo)

    @api.route("GET", rf"{_REST}/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/collaborators",
               name="repos.listCollaborators")
    @rated
    def collaborators(request: Request, owner: str, name: str) -> Any:
        refused, _ = visible(request, owner)
        repo = org.repo(name)
        if refused is not None or repo is None:
            return refused or error(404, "Not Found", DOCS)
        chosen = sorted(repo.collaborators.items())
        return listing(request, [{**user(login), "role_name": permission.lower()}
                                 for login, permission in chosen])

    @api.route("POST", r"(?:/api)?/graphql", name="graphql")
    @rated
    def graphql(request: Request) -> Any:
        refused, scopes = grant(request)
        if refused is not None:
            return refused
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return error(400, "Problems parsing JSON")
        return graph.execute(body["query"], body.get("variables") or {}, scopes,
                             api.page_size)


def _rest_repo(api: FakeApi, org: Org, repo: Repo, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name,
        "full_name": f"{org.login}/{repo.name}", "private": repo.visibility != "public",
        "owner": {"login": org.login, "id": org.id, "type": "Organization"},
        "html_url": f"https://github.com/{org.login}/{repo.name}",
        "url": f"{api.url}/repos/{org.login}/{repo.name}", "fork": repo.fork,
        "archived": repo.archived, "disabled": False, "visibility": repo.visibility,
        "default_branch": repo.default_branch or "main", "size": 0 if repo.default_branch
        is None else 2048, "pushed_at": "2026-11-30T12:00:00Z",
        "updated_at": "2026-11-30T12:00:00Z", "stargazers_count": 3,
        "permissions": {"admin": admin, "maintain": admin, "push": admin, "triage": True,
                        "pull": True}}
    if admin:  # security_and_analysis is shown only to those who administer the repository
        body["security_and_analysis"] = {
            "advanced_security": {"status": "enabled"},
            "secret_scanning": {"status": repo.secret_scanning},
            "secret_scanning_push_protection": {"status": repo.push_protection},
            "dependabot_security_updates": {"status": "enabled"
                                            if repo.vulnerability_alerts else "disabled"}}
    return body


def _rest_protection(api: FakeApi, org: Org, repo: Repo) -> dict[str, Any]:
    rule = repo.protection or {}
    url = f"{api.url}/repos/{org.login}/{repo.name}/branches/{repo.default_branch}/protection"
    body: dict[str, Any] = {
        "url": url,
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": rule["isAdminEnforced"]},
        "allow_force_pushes": {"enabled": rule["allowsForcePushes"]},
        "allow_deletions": {"enabled": rule["allowsDeletions"]},
        "required_linear_history": {"enabled": False},
        "required_conversation_resolution": {"enabled": False},
        "lock_branch": {"enabled": False}, "allow_fork_syncing": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_signatures": {"url": f"{url}/required_signatures", "enabled": False}}
    if rule["requiresApprovingReviews"]:
        body["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": rule["dismissesStaleReviews"],
            "require_code_owner_reviews": rule["requiresCodeOwnerReviews"],
            "require_last_push_approval": rule["requireLastPushApproval"],
            "required_approving_review_count": rule["requiredApprovingReviewCount"]}
    return body


def _alert(api: FakeApi, org: Org, alert: dict[str, Any]) -> dict[str, Any]:
    repo = org.repo(alert["repository"])
    assert repo is not None
    ghsa = alert["ghsa_id"]
    return {
        "number": alert["number"], "state": alert["state"],
        "dependency": {"package": {"ecosystem": "npm", "name": alert["package"]},
                       "manifest_path": "package-lock.json", "scope": "runtime"},
        "security_advisory": {"ghsa_id": ghsa, "cve_id": alert.get("cve_id"),
                              "summary": f"Vulnerability in {alert['package']}",
                              "severity": alert["severity"]},
        "security_vulnerability": {"package": {"ecosystem": "npm", "name": alert["package"]},
                                   "severity": alert["severity"],
                                   "vulnerable_version_range": "< 2.0.0",
                                   "first_patched_version": {"identifier": "2.0.0"}},
        "url": f"{api.url}/repos/{org.login}/{repo.name}/dependabot/alerts/{alert['number']}",
        "html_url": f"https://github.com/{org.login}/{repo.name}/security/dependabot/"
                    f"{alert['number']}",
        "created_at": alert["created_at"], "updated_at": alert["created_at"],
        "dismissed_at": None, "fixed_at": None,
        "repository": {"id": repo.id, "name": repo.name, "full_name": f"{org.login}/{repo.name}",
                       "private": repo.visibility != "public"}}


def start(org: Org, page_size: int = 5, window: Window | None = None
          ) -> tuple[FakeApi, Tokens, dict[int, tuple[str, int]]]:
    """A started fake for `org`. Apps are registered into the returned dict (app id ->
    (public key PEM, installation id)) by whoever holds their private key."""
    api = FakeApi("github", page_size=page_size)
    tokens = Tokens()
    apps: dict[int, tuple[str, int]] = {}
    install(api, org, tokens, apps, window)
    return api.start(), tokens, apps


def personal_token(tokens: Tokens, org: Org, scopes: Iterable[str] = GRANTED,
                   login: str | None = None) -> str:
    """A fine-grained token for `org` (or another organisation's `login`) holding `scopes`."""
    token = "github_pat_" + secrets.token_urlsafe(24)
    tokens.admit(token, AUDIENCE, login or org.login, scopes)
    return token


def source_for(api: FakeApi, org: Org, name: str = "github-demo",
               token_env: str = "GITHUB_TOKEN") -> dict[str, Any]:
    return {"name": name, "kind": "github", "organization": org.login, "api_url": api.url,
            "token_env": token_env, "ca_bundle": str(ca_file())}



def start_demo(workdir: Path) -> DemoSource:
    from collector.demo.emulators.github_seed import sample_org

    org, planted = sample_org()
    api, tokens, _ = start(org)
    # A variable of the demo's own, so that an operator's GITHUB_TOKEN is neither used nor
    # replaced.
    variable = "ANNEXA_DEMO_GITHUB_TOKEN"
    return DemoSource(source=source_for(api, org, token_env=variable),
                      env={variable: personal_token(tokens, org)}, planted=planted,
                      stop=api.stop)
