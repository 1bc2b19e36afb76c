"""GitHub's GraphQL API over the emulator's organisation: real queries executed by graphql-core
against the schema slice, with GitHub's answer shapes: connections with `first`/`after`
cursors (at most 100 a page; repositories at most the fake's page size), null and a FORBIDDEN error
where the token lacks the permission a field needs, NOT_FOUND for an organisation it cannot
see, and `type` beside each error's message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import graphql

from collector.demo.emulators.github_schema import SDL
from collector.demo.emulators.server import page_of

if TYPE_CHECKING:
    from collector.demo.emulators.github import Org, Repo

MAX_FIRST = 100
_SCHEMA: graphql.GraphQLSchema | None = None


class Refused(graphql.GraphQLError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message, extensions={"type": kind})


def _connection(items: list[Any], info: graphql.GraphQLResolveInfo, first: int | None,
                after: str | None, page_size: int, edges: bool = False,
                convert: Any = None) -> dict[str, Any]:
    if first is None:
        raise Refused("MISSING_PAGINATION_BOUNDARIES", "You must provide a `first` or `last` "
                      f"value to properly paginate the `{info.field_name}` connection.")
    if not 1 <= first <= MAX_FIRST:
        raise Refused("EXCESSIVE_PAGINATION", f"Requesting {first} records on the "
                      f"`{info.field_name}` connection exceeds the `first` limit of 100 "
                      "records.")
    try:
        page, cursor = page_of(items, after, min(first, page_size))
    except ValueError:
        raise Refused("INVALID_CURSOR_ARGUMENTS",
                      f"`{after}` does not appear to be a valid cursor.") from None
    if convert is not None:  # only the page's items are built
        page = [convert(item) for item in page]
    nodes = [item["node"] for item in page] if edges else page
    return {"nodes": nodes, "edges": page if edges else [{"node": n} for n in page],
            "totalCount": len(items), "pageInfo": {
                "hasNextPage": cursor is not None, "endCursor": cursor,
                "hasPreviousPage": bool(after), "startCursor": after}}


def schema() -> graphql.GraphQLSchema:
    global _SCHEMA
    if _SCHEMA is None:
        built = graphql.build_schema(SDL)
        fields = built.type_map

        def context(info: graphql.GraphQLResolveInfo) -> dict[str, Any]:
            return info.context  # type: ignore[no-any-return]

        def organization(_root: Any, info: graphql.GraphQLResolveInfo, login: str) -> Any:
            org: Org = context(info)["org"]
            if login.lower() != org.login.lower() or not context(info)["visible"]:
                raise Refused("NOT_FOUND", "Could not resolve to an Organization with the "
                              f"login of '{login}'.")
            return {"login": org.login, "_org": org}

        def repositories(obj: dict[str, Any], info: graphql.GraphQLResolveInfo,
                         first: int | None = None, after: str | None = None,
                         **_: Any) -> Any:
            org: Org = obj["_org"]
            ordered = sorted(org.repos, key=lambda r: r.name.lower())
            return _connection(ordered, info, first, after, context(info)["page_size"],
                               convert=lambda repo: _repository(org, repo, context(info)))

        def paged(key: str, edges: bool = False) -> Any:
            def resolve(obj: dict[str, Any], info: graphql.GraphQLResolveInfo,
                        first: int | None = None, after: str | None = None,
                        **_: Any) -> Any:
                items = obj[key]
                if isinstance(items, Refused):
                    raise items
                # Only the repositories come in small pages: GitHub fills a nested
                # connection up to its `first`.
                return None if items is None else _connection(
                    items, info, first, after, MAX_FIRST, edges)
            return resolve

        def guarded(key: str) -> Any:
            def resolve(obj: dict[str, Any], _info: graphql.GraphQLResolveInfo) -> Any:
                if isinstance(obj[key], Refused):
                    raise obj[key]
                return obj[key]
            return resolve

        fields["Query"].fields["organization"].resolve = organization  # type: ignore[attr-defined]
        fields["Organization"].fields["repositories"].resolve = repositories  # type: ignore[attr-defined]
        fields["Repository"].fields["collaborators"].resolve = paged(  # type: ignore[attr-defined]
            "_collaborators", edges=True)
        fields["Repository"].fields["hasVulnerabilityAlertsEnabled"].resolve = guarded(  # type: ignore[attr-defined]
            "hasVulnerabilityAlertsEnabled")
        fields["Ref"].fields["rules"].resolve = paged("_rules")  # type: ignore[attr-defined]
        fields["Ref"].fields["branchProtectionRule"].resolve = guarded(  # type: ignore[attr-defined]
            "branchProtectionRule")
        fields["RepositoryRuleset"].fields["bypassActors"].resolve = paged(  # type: ignore[attr-defined]
            "_bypass")
        fields["RuleParameters"].resolve_type = (  # type: ignore[attr-defined]
            lambda obj, _info, _type: obj["__typename"])
        fields["BypassActor"].resolve_type = (  # type: ignore[attr-defined]
            lambda obj, _info, _type: obj["__typename"])
        _SCHEMA = built
    return _SCHEMA


def _forbidden() -> Refused:
    return Refused("FORBIDDEN", "Resource not accessible by integration")


def _repository(org: Org, repo: Repo, context: dict[str, Any]) -> dict[str, Any]:
    from collector.demo.emulators.github import ADMINISTRATION, VULNERABILITY_ALERTS

    scopes: set[str] = context["scopes"]
    admin = ADMINISTRATION in scopes
    ref = None
    if repo.default_branch is not None:
        rules = []
        for ruleset in org.rulesets:
            if not ruleset.covers(repo.name):
                continue
            body = {"databaseId": ruleset.id, "name": ruleset.name,
                    "enforcement": ruleset.enforcement, "target": "BRANCH",
                    # Bypass actors are an administrator's to see.
                    "_bypass": ruleset.bypass if admin else None}
            for kind, parameters in ruleset.rules:
                rules.append({"type": kind, "repositoryRuleset": body, "parameters":
                              {"__typename": "PullRequestParameters", **parameters}
                              if parameters is not None else None})
        protection: Any = repo.protection
        if repo.protection_restricted or not admin:
            protection = _forbidden()
        ref = {"name": repo.default_branch, "branchProtectionRule": protection,
               "_rules": rules}
    return {"name": repo.name, "nameWithOwner": f"{org.login}/{repo.name}",
            "databaseId": repo.id, "isArchived": repo.archived, "isFork": repo.fork,
            "isPrivate": repo.visibility != "public", "visibility": repo.visibility.upper(),
            "hasVulnerabilityAlertsEnabled": repo.vulnerability_alerts
            if VULNERABILITY_ALERTS in scopes else _forbidden(),
            "defaultBranchRef": ref,
            "_collaborators": [{"permission": permission, "node": {"login": login}}
                               for login, permission in sorted(repo.collaborators.items())]}


class GraphQL:
    def __init__(self, org: Org) -> None:
        self.org = org

    def execute(self, query: str, variables: dict[str, Any], scopes: set[str],
                page_size: int) -> dict[str, Any]:
        from collector.demo.emulators.github import METADATA

        try:
            document = graphql.parse(query)
        except graphql.GraphQLSyntaxError as exc:
            return {"errors": [{"message": exc.message, "locations": _locations(exc)}]}
        problems = graphql.validate(schema(), document)
        if problems:
            return {"errors": [{"path": None, "extensions": {"code": "undefinedField"},
                                "locations": _locations(e), "message": e.message}
                               for e in problems]}
        result = graphql.execute(schema(), document, variable_values=variables, context_value={
            "org": self.org, "scopes": scopes, "visible": METADATA in scopes,
            "page_size": page_size})
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [_github_error(e) for e in result.errors]
        return body


def _locations(exc: graphql.GraphQLError) -> list[dict[str, int]]:
    return [{"line": loc.line, "column": loc.column} for loc in exc.locations or []]


def _github_error(exc: graphql.GraphQLError) -> dict[str, Any]:
    """GitHub writes an error's `type` beside its message, not in `extensions`."""
    kind = (exc.extensions or {}).get("type")
    body: dict[str, Any] = {"path": exc.path, "locations": _locations(exc),
                            "message": exc.message}
    if kind:
        body["type"] = kind
    return body
