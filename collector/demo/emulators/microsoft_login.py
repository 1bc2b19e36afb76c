"""The Microsoft identity platform's token service, as azure-identity (through MSAL) calls it:
OpenID metadata of the tenant, and the v2.0 token endpoint's client-credentials grant with a
client secret. Tokens are issued for the audience of the requested scope
(`https://management.azure.com/.default` -> `https://management.azure.com`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from collector.demo.emulators.server import FakeApi, Tokens, json_response


@dataclass
class Directory:
    """Tenants and their app registrations (client id -> secret) that may obtain tokens, and
    the application permissions (app roles, such as User.Read.All) consented for each app:
    its tokens carry them as scopes."""

    tenants: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: Tokens = field(default_factory=Tokens)
    token_requests: int = 0
    roles: dict[str, set[str]] = field(default_factory=dict)

    def register(self, tenant: str, client_id: str, secret: str,
                 roles: Iterable[str] = ()) -> None:
        self.tenants.setdefault(tenant, {})[client_id] = secret
        self.roles[client_id] = set(roles)


def _aad_error(status: int, error: str, code: int, text: str) -> Response:
    return json_response({"error": error, "error_description": f"AADSTS{code}: {text}",
                          "error_codes": [code]}, status)


def audience(scope: str) -> str:
    """The resource a `.default` scope names."""
    return scope.split()[0].removesuffix("/.default").removesuffix(".default").rstrip("/")


def install(api: FakeApi, directory: Directory) -> None:
    @api.route("GET", r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration",
               name="login.openid")
    def openid(request: Request, tenant: str) -> object:
        if tenant not in directory.tenants:
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{api.url}/{tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "private_key_jwt"],
            "response_types_supported": ["code", "id_token", "code id_token"],
            "tenant_region_scope": "EU",
        }

    @api.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", name="login.token")
    def token(request: Request, tenant: str) -> object:
        directory.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        apps = directory.tenants.get(tenant)
        if apps is None:
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003,
                              "The app requested an unsupported grant type.")
        client = form.get("client_id", "")
        if client not in apps:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{client}' was not found in the "
                              f"directory '{tenant}'.")
        if form.get("client_secret") != apps[client]:
            return _aad_error(401, "invalid_client", 7000215,
                              "Invalid client secret provided.")
        scope = form.get("scope", "")
        if not scope.endswith(".default"):
            return _aad_error(400, "invalid_scope", 1002012,
                              "The provided value for scope is not valid.")
        access, lifetime = directory.tokens.issue(audience(scope), subject=client,
                                                  scopes=directory.roles.get(client, ()))
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                "access_token": access}
