"""The Microsoft Graph application permissions the Entra connector needs, each with the one
call that exercises it, for `annexa doctor`; they follow config/entra/graph-permissions.json.
The tenant's token is asked for first: without it nothing can be judged."""

from __future__ import annotations

from connectors.entra.graph import Graph
from connectors.entra.settings import Settings
from connectors.probing import Plan, Probe

POLICY = "config/entra/graph-permissions.json"
# permission -> (path, query) of the cheapest call that needs it.
CALLS: dict[str, tuple[str, dict[str, object]]] = {
    "User.Read.All": ("users", {"$select": "id", "$top": 1}),
    "AuditLog.Read.All": ("reports/authenticationMethods/userRegistrationDetails",
                          {"$top": 1}),
    "Policy.Read.All": ("policies/authorizationPolicy", {}),
    "RoleManagement.Read.Directory": ("roleManagement/directory/roleDefinitions",
                                      {"$select": "id"}),
    "Application.Read.All": ("applications", {"$select": "id", "$top": 1}),
}


def plan(settings: Settings) -> Plan:
    graph = Graph(settings)

    def probe(permission: str, path: str, query: dict[str, object]) -> Probe:
        return Probe(permission, f"GET /v1.0/{path}", lambda: graph.client.request(
            "GET", path, operation=f"doctor:{permission}", params=query), POLICY)

    return Plan([probe(permission, *CALLS[permission]) for permission in CALLS],
                login=lambda: graph.auth.apply({}),
                login_call=f"a Graph token for tenant {settings.tenant_id}")
