"""The Okta management API scopes the connector needs, each with the one call that exercises
it, for `annexa doctor`; they follow config/okta/oauth-scopes.json. A service app's token is
asked for once, for the configured scopes: the org refuses it whole when one is not granted."""

from __future__ import annotations

from connectors.okta.api import client
from connectors.okta.settings import Settings
from connectors.probing import Plan, Probe

POLICY = "config/okta/oauth-scopes.json"
# scope -> (path, query) of the cheapest call that needs it.
CALLS: dict[str, tuple[str, dict[str, object]]] = {
    "okta.users.read": ("/api/v1/users", {"limit": 1}),
    "okta.roles.read": ("/api/v1/iam/assignees/users", {"limit": 1}),
    "okta.policies.read": ("/api/v1/policies", {"type": "OKTA_SIGN_ON", "limit": 1}),
    "okta.authenticators.read": ("/api/v1/authenticators", {}),
    "okta.apps.read": ("/api/v1/apps", {"limit": 1}),
    "okta.apiTokens.read": ("/api/v1/api-tokens", {"limit": 1}),
    "okta.networkZones.read": ("/api/v1/zones", {"limit": 1}),
}


def plan(settings: Settings) -> Plan:
    api = client(settings)

    def probe(scope: str, path: str, query: dict[str, object]) -> Probe:
        return Probe(scope, f"GET {path}", lambda: api.request(
            "GET", path, operation=f"doctor:{scope}", params=query), POLICY)

    login = (lambda: api.auth.apply({})) if settings.service_app else None  # type: ignore[union-attr]
    return Plan([probe(scope, *CALLS[scope]) for scope in CALLS], login=login,
                login_call=f"POST {settings.org_url}/oauth2/v1/token")
