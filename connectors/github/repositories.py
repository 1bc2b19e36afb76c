"""The organisation's repositories: their settings from the REST listing (security_and_analysis
is only there), joined by name with one GraphQL listing that brings each repository's default
branch with the classic protection rule and the ruleset rules that apply to it, its Dependabot
alerts setting and its outside collaborators' permissions, 100 repositories an answer instead
of several calls each. The open critical Dependabot alerts come from the organisation's own
listing, paged by cursor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from collector.model import ALL_REGIONS, FETCH_ERRORS, CollectionError, Resource, Scope
from connectors.github.api import GitHub
from connectors.github.organization import PAGE, login_of, outside_collaborators
from connectors.http import HttpError, MalformedResponse, detail, paging
from connectors.spool import KeyedSpool

REPOSITORY = "github.repository"
REPOSITORY_FIELDS = ("id", "name", "full_name", "html_url", "private", "visibility", "archived",
                     "disabled", "fork", "default_branch", "security_and_analysis")
DEFAULT_BRANCH = "default_branch_ref"
PROTECTION = "branch_protection"
ALERTS_ENABLED = "has_vulnerability_alerts_enabled"
COLLABORATORS = "outside_collaborators"
CRITICAL_ALERTS = "open_critical_dependabot_alerts"
# The GraphQL fields each of ours comes from.
_GRAPHQL_FIELDS = {"defaultBranchRef": DEFAULT_BRANCH, "hasVulnerabilityAlertsEnabled":
                   ALERTS_ENABLED, "collaborators": COLLABORATORS}
# GitHub charges a GraphQL query by the nodes its connections could return: with these
# pages a query of 100 repositories costs 22 points of the 5,000 an hour (100 x 20 x 10 bypass
# actors weigh most), so 10,000 repositories take under half the hour's budget.
RULES_PAGE, BYPASS_PAGE, COLLABORATORS_PAGE = 20, 10, 50
# A repository with more outside collaborators than one GraphQL page: they are asked of REST.
_MORE = "more outside collaborators than the GraphQL page holds"

QUERY = """
query Repositories($org: String!, $page: Int!, $rules: Int!, $bypass: Int!,
                   $collaborators: Int!, $cursor: String) {
  organization(login: $org) {
    repositories(first: $page, after: $cursor, orderBy: {field: NAME, direction: ASC}) {
      pageInfo { hasNextPage endCursor }
      nodes {
        name
        hasVulnerabilityAlertsEnabled
        defaultBranchRef {
          name
          branchProtectionRule {
            pattern requiresApprovingReviews requiredApprovingReviewCount
            dismissesStaleReviews requiresCodeOwnerReviews requireLastPushApproval
            allowsForcePushes allowsDeletions isAdminEnforced requiresStatusChecks
          }
          rules(first: $rules) {
            pageInfo { hasNextPage }
            nodes {
              type
              parameters {
                ... on PullRequestParameters {
                  requiredApprovingReviewCount dismissStaleReviewsOnPush
                  requireCodeOwnerReview requireLastPushApproval
                }
              }
              repositoryRuleset {
                databaseId name enforcement target
                bypassActors(first: $bypass) {
                  totalCount
                  nodes {
                    bypassMode organizationAdmin enterpriseOwner deployKey repositoryRoleName
                    actor { __typename ... on App { slug } ... on Team { slug } }
                  }
                }
              }
            }
          }
        }
        collaborators(affiliation: OUTSIDE, first: $collaborators) {
          pageInfo { hasNextPage }
          edges { permission node { login } }
        }
      }
    }
  }
}
"""


def repositories_then_collaborators(github: GitHub, scope: Scope
                                    ) -> Iterator[Resource | CollectionError]:
    """Every repository, then the outside collaborators with the permissions the
    repositories gave them."""
    permissions: dict[str, dict[str, str]] = defaultdict(dict)
    failed: str | None = None
    with KeyedSpool() as graph:
        graph_failed = _graph(github, scope, graph)
        alerts, alerts_failed = _critical_alerts(github, scope)
        try:
            for page in paging.link_header(github.rest, f"orgs/{login_of(scope)}/repos",
                                           operation="repos.listForOrg",
                                           params={"type": "all", "per_page": PAGE}):
                names = [_name(repo) for repo in page]
                found = graph.take([name.lower() for name in names])
                for repo in page:
                    data = {field: repo.get(field) for field in REPOSITORY_FIELDS}
                    _join(github, data, found.get(repo["name"].lower()), graph_failed)
                    if alerts_failed:
                        data.setdefault(FETCH_ERRORS, {})[CRITICAL_ALERTS] = alerts_failed
                    else:
                        data[CRITICAL_ALERTS] = alerts.get(str(repo.get("full_name")), [])
                    for edge in data.get(COLLABORATORS) or []:
                        permissions[edge["login"]][str(data["full_name"])] = edge["permission"]
                    if COLLABORATORS in data.get(FETCH_ERRORS, {}):
                        failed = failed or (f"{data['full_name']}: "
                                            f"{data[FETCH_ERRORS][COLLABORATORS]}")
                    yield scope.resource(REPOSITORY, f"github:repo:{data['full_name']}", data)
        except HttpError as exc:
            failed = f"the repositories could not all be listed: {exc}"
            yield scope.error("repos", ALL_REGIONS, (REPOSITORY,), str(exc))
    yield from outside_collaborators(github, scope, permissions, failed)


def _name(repo: Any) -> str:
    if not isinstance(repo, dict) or not isinstance(repo.get("name"), str) or not isinstance(
            repo.get("full_name"), str):
        raise MalformedResponse("repos.listForOrg", "a repository in the answer has no name")
    return repo["name"]


def _graph(github: GitHub, scope: Scope, spool: KeyedSpool) -> str | None:
    """The GraphQL side of every repository into `spool` by lower-cased name (GitHub's names
    are unique regardless of case), with the fields that failed for it under FETCH_ERRORS;
    or why the listing failed, or why some repositories came as null (a non-null field that
    failed nulls its whole repository)."""
    partial: list[dict[str, Any]] = []
    nulled: list[str] = []
    try:
        variables = {"org": login_of(scope), "page": PAGE, "rules": RULES_PAGE,
                     "bypass": BYPASS_PAGE, "collaborators": COLLABORATORS_PAGE}
        for data in paging.graphql(github.graphql, github.graphql_path,
                                   operation="graphql.repositories", query=QUERY,
                                   variables=variables,
                                   connection=("organization", "repositories"),
                                   on_partial=partial.extend):
            nodes = data["organization"]["repositories"].get("nodes") or []
            failures = _failures(partial, len(nodes))
            partial.clear()
            spool.put((node["name"].lower(), _node(node, failures.get(index, {})))
                      for index, node in enumerate(nodes) if isinstance(node, dict))
            nulled.extend(message for index, node in enumerate(nodes) if node is None
                          for message in failures.get(index, {}).values())
    except HttpError as exc:
        if exc.status == 0:
            raise
        return str(exc)
    except (KeyError, TypeError, AttributeError) as exc:
        return f"graphql.repositories: unexpected answer: {type(exc).__name__}: {exc}"
    if nulled:
        return (f"graphql.repositories: {len(nulled)} repositories answered null: "
                f"{sorted(set(nulled))[0]}")
    return None


def _failures(errors: list[dict[str, Any]], count: int) -> dict[int, dict[str, str]]:
    """Node index -> {GraphQL field: message} from errors whose path points into a node
    (["organization", "repositories", "nodes", 3, "defaultBranchRef", ...])."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for error in errors:
        path = error["path"]
        if (len(path) < 5 or path[:3] != ["organization", "repositories", "nodes"]
                or not isinstance(path[3], int) or not 0 <= path[3] < count):
            raise MalformedResponse("graphql.repositories", f"{error.get('type', 'error')} "
                                    f"at {path}: {error.get('message', '')}")
        field = ".".join(str(p) for p in path[4:])
        found[path[3]][field] = f"{error.get('type', 'error')}: {error.get('message', '')}"
    return found


def _node(node: dict[str, Any], failures: dict[str, str]) -> dict[str, Any]:
    ref = node.get("defaultBranchRef")
    data: dict[str, Any] = {DEFAULT_BRANCH: ref, ALERTS_ENABLED:
                            node.get("hasVulnerabilityAlertsEnabled")}
    errors: dict[str, str] = {}
    for field, message in failures.items():
        if field.startswith("defaultBranchRef.branchProtectionRule"):
            errors[PROTECTION] = message  # asked again of REST
        else:
            errors[_GRAPHQL_FIELDS.get(field.split(".")[0], DEFAULT_BRANCH)] = message
    collaborators = node.get("collaborators")
    if isinstance(collaborators, dict):
        if (collaborators.get("pageInfo") or {}).get("hasNextPage"):
            errors.setdefault(COLLABORATORS, _MORE)
        data[COLLABORATORS] = sorted(
            ({"login": edge["node"]["login"], "permission": edge["permission"]}
             for edge in collaborators.get("edges") or []), key=lambda e: e["login"])
    if isinstance(ref, dict) and ((ref.get("rules") or {}).get("pageInfo") or {}).get(
            "hasNextPage"):
        errors[DEFAULT_BRANCH] = (f"more than {RULES_PAGE} ruleset rules apply to the default "
                                  "branch; they are not all judged")
    if errors:
        data[FETCH_ERRORS] = errors
    return data


def _join(github: GitHub, data: dict[str, Any], node: dict[str, Any] | None,
          graph_failed: str | None) -> None:
    """Merge the GraphQL side into the REST repository; ask REST for what GraphQL could not
    say: the default branch's protection, and collaborators beyond the first page."""
    full_name = data["full_name"]
    if node is None:
        why = graph_failed or "the repository was not in the GraphQL listing"
        data[FETCH_ERRORS] = {name: why for name in (DEFAULT_BRANCH, ALERTS_ENABLED,
                                                     COLLABORATORS, PROTECTION)}
        return
    errors = node.pop(FETCH_ERRORS, {})
    data.update(node)
    if errors.pop(PROTECTION, None) is not None and data.get("default_branch"):
        # "Branch not protected" is GitHub's 404: no protection, a finding, not an error.
        detail(data, PROTECTION, lambda: github.rest.get_json(
            f"repos/{full_name}/branches/{data['default_branch']}/protection",
            operation="repos.getBranchProtection"))
    if errors.get(COLLABORATORS) == _MORE:
        del errors[COLLABORATORS]
        detail(data, COLLABORATORS, lambda: _rest_collaborators(github, full_name))
    if errors:
        data.setdefault(FETCH_ERRORS, {}).update(errors)


def _rest_collaborators(github: GitHub, full_name: str) -> list[dict[str, str]]:
    found = [{"login": user["login"], "permission": str(user["role_name"]).upper()}
             for page in paging.link_header(github.rest, f"repos/{full_name}/collaborators",
                                            operation="repos.listCollaborators",
                                            params={"affiliation": "outside",
                                                    "per_page": PAGE})
             for user in page]
    return sorted(found, key=lambda e: e["login"])


def _critical_alerts(github: GitHub, scope: Scope
                     ) -> tuple[dict[str, list[dict[str, Any]]], str | None]:
    """Open critical Dependabot alerts by repository full name. The organisation's listing
    pages by cursor only (`after`, in its Link header)."""
    alerts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    try:
        for page in paging.link_header(github.rest, f"orgs/{login_of(scope)}/dependabot/alerts",
                                       operation="dependabot.listAlertsForOrg",
                                       params={"state": "open", "severity": "critical",
                                               "per_page": PAGE}):
            for alert in page:
                advisory = alert.get("security_advisory") or {}
                alerts[alert["repository"]["full_name"]].append({
                    "number": alert["number"], "created_at": alert["created_at"],
                    "state": alert.get("state"),
                    "severity": (alert.get("security_vulnerability") or {}).get("severity"),
                    "ghsa_id": advisory.get("ghsa_id"), "html_url": alert.get("html_url")})
    except HttpError as exc:
        return {}, str(exc)
    except (KeyError, TypeError, AttributeError) as exc:
        return {}, f"dependabot.listAlertsForOrg: unexpected answer: {type(exc).__name__}: {exc}"
    return {name: sorted(found, key=lambda a: a["number"]) for name, found in alerts.items()}, None
