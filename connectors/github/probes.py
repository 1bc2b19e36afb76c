"""The GitHub App permissions the GitHub connector needs, each with the one call that exercises
it, for `annexa doctor`; they follow config/github/app-permissions.json. The organisation is
read first (an App's installation token is asked for on the way): without it nothing can be
judged. A repository's branch protection is asked of the first repository listed."""

from __future__ import annotations

from typing import Any

from connectors.github.api import GitHub
from connectors.github.settings import Settings
from connectors.http import parse_json
from connectors.probing import Plan, Probe, Untested

POLICY = "config/github/app-permissions.json"


def plan(settings: Settings) -> Plan:
    github = GitHub(settings)
    org = settings.organization
    listed: list[Any] = []

    def get(path: str, operation: str, **query: object) -> Any:
        return parse_json(github.rest.request("GET", path, operation=operation,
                                              params=query or None), operation)

    def repositories() -> None:
        listed[:] = get(f"orgs/{org}/repos", "doctor:metadata", type="all", per_page=1)

    def protection() -> None:
        repository = next((r for r in listed if isinstance(r, dict) and r.get("default_branch")),
                          None)
        if repository is None:
            raise Untested("no repository with a default branch to ask about")
        get(f"repos/{repository['full_name']}/branches/{repository['default_branch']}"
            "/protection", "doctor:administration")

    def probe(permission: str, call: str, run: Any, *authorised: int) -> Probe:
        return Probe(f"{permission}:read", call, run, POLICY, grant=f'"{permission}": "read"',
                     authorised=authorised)

    return Plan([
        probe("metadata", f"GET /orgs/{org}/repos", repositories),
        probe("organization_administration", f"GET /orgs/{org}/actions/permissions/workflow",
              lambda: get(f"orgs/{org}/actions/permissions/workflow",
                          "doctor:organization_administration")),
        probe("members", f"GET /orgs/{org}/members",
              lambda: get(f"orgs/{org}/members", "doctor:members", per_page=1)),
        # "Branch not protected" is GitHub's 404, to a caller allowed to read protection.
        probe("administration", "GET /repos/{repo}/branches/{branch}/protection", protection,
              404),
        probe("vulnerability_alerts", f"GET /orgs/{org}/dependabot/alerts",
              lambda: get(f"orgs/{org}/dependabot/alerts", "doctor:vulnerability_alerts",
                          per_page=1)),
    ], login=lambda: get(f"orgs/{org}", "orgs.get"), login_call=f"GET /orgs/{org}")
