"""The OAuth scopes the Workspace connector's domain-wide delegation needs, each with the one
call that exercises it, for `annexa doctor`; they follow
config/google_workspace/delegated-scopes.txt. Each call goes with a token of its scope alone:
Google refuses a delegated token whose scope is not delegated in the Admin console, which
names that scope and no other."""

from __future__ import annotations

from connectors.google_workspace import ADMIN_API, CLOUD_IDENTITY_API, api_client
from connectors.google_workspace.credentials import DIRECTORY_SCOPES, POLICY_SCOPES, delegated
from connectors.google_workspace.directory import BASE
from connectors.google_workspace.policies import FILTER
from connectors.google_workspace.settings import Settings
from connectors.http import HttpClient
from connectors.probing import Plan, Probe

POLICY = "config/google_workspace/delegated-scopes.txt"
_SCOPE = "https://www.googleapis.com/auth/"


def plan(settings: Settings) -> Plan:
    scopes = (*DIRECTORY_SCOPES, *POLICY_SCOPES)
    credentials = dict(zip(scopes, delegated(settings, *((scope,) for scope in scopes)),
                           strict=True))
    customer = settings.customer

    def probe(scope: str, api: str, service: str, path: str,
              query: dict[str, object] | None = None) -> Probe:
        client: HttpClient = api_client(settings, api, service, credentials[_SCOPE + scope],
                                        None)
        return Probe(_SCOPE + scope, f"GET /{path}", lambda: client.request(
            "GET", path, operation=f"doctor:{scope}", params=query), POLICY)

    return Plan([
        probe("admin.directory.customer.readonly", ADMIN_API, "admin",
              f"{BASE}/customers/{customer}"),
        probe("admin.directory.orgunit.readonly", ADMIN_API, "admin",
              f"{BASE}/customer/{customer}/orgunits", {"type": "children"}),
        probe("admin.directory.user.readonly", ADMIN_API, "admin", f"{BASE}/users",
              {"customer": customer, "maxResults": 1}),
        probe("admin.directory.rolemanagement.readonly", ADMIN_API, "admin",
              f"{BASE}/customer/{customer}/roles", {"maxResults": 1}),
        probe("cloud-identity.policies.readonly", CLOUD_IDENTITY_API, "cloudidentity",
              "v1/policies", {"filter": FILTER.format(customer=customer), "pageSize": 1}),
    ])
