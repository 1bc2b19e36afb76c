"""Microsoft Graph v1.0 as the entra connector calls it, behind the Microsoft identity
platform's token service (microsoft_login): the real paths, `$select`/`$top`/`$expand`,
`@odata.nextLink` paging with `$skiptoken`, error bodies and throttling answers.

As Graph does, `/users` returns only its default properties unless `$select` names others;
`$top` above an endpoint's maximum is refused (400) and a page never holds more than the
endpoint serves (500 users when signInActivity is selected); a tenant without Entra ID P1/P2
(`Tenant.premium` False) refuses signInActivity and the registration report with 403
Authentication_RequestFromNonPremiumTenantOrB2CTenant; the registration report leaves
disabled users out. Pages are at most `api.page_size` long.

`start_demo()` seeds a tenant with planted gaps beside well-configured twins."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from collector.demo.emulators import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT,
    DemoSource,
    microsoft_login,
)
from collector.demo.emulators.server import FakeApi, Tokens, ca_file, json_response, page_of

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
UNLICENSED = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
# Properties /users returns when no $select names others.
DEFAULT_USER_FIELDS = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                       "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                       "userPrincipalName", "id")
MAX_TOP = 999
SIGN_IN_PAGE = 500
# The application permissions that admit a call (any one of them), as Graph's reference
# lists them, least privileged first.
USERS = ("User.Read.All", "Directory.Read.All")
AUDIT_LOG = ("AuditLog.Read.All",)
POLICIES = ("Policy.Read.All",)
CONDITIONAL_ACCESS = ("Policy.Read.ConditionalAccess", "Policy.Read.All")
ROLES = ("RoleManagement.Read.Directory", "RoleManagement.Read.All", "Directory.Read.All")
APPLICATIONS = ("Application.Read.All", "Directory.Read.All")
# What the demo's app registration is granted: what config/entra/graph-permissions.json asks
# an operator to grant (tests hold the two equal).
GRANTED = ("User.Read.All", "AuditLog.Read.All", "Policy.Read.All",
           "RoleManagement.Read.Directory", "Application.Read.All")


def graph_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}},
        status, headers)


def throttled(retry_after: int = 0) -> Callable[[Request], Response]:
    """Graph's throttling answer (tests keep Retry-After at 0: the client honours it)."""
    return lambda _request: graph_error(
        429, "TooManyRequests", "Too many requests from the application. Please retry later.",
        {"Retry-After": str(retry_after)})


def forbidden(_request: Request | None = None) -> Response:
    return graph_error(403, "Authorization_RequestDenied",
                       "Insufficient privileges to complete the operation.")


@dataclass
class Tenant:
    """A directory's state, as Graph serves it. Role assignments name their principal by id;
    `$expand=principal` looks it up among users, groups and service principals."""

    id: str
    premium: bool = True
    users: list[dict[str, Any]] = field(default_factory=list)
    registrations: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    conditional_access: list[dict[str, Any]] = field(default_factory=list)
    security_defaults: dict[str, Any] = field(default_factory=lambda: {
        "id": "00000000-0000-0000-0000-000000000005", "displayName": "Security Defaults",
        "description": "Security defaults is a set of basic identity security mechanisms "
                       "recommended by Microsoft.", "isEnabled": False})
    authorization_policy: dict[str, Any] = field(default_factory=dict)
    role_definitions: list[dict[str, Any]] = field(default_factory=list)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    applications: list[dict[str, Any]] = field(default_factory=list)
    service_principals: list[dict[str, Any]] = field(default_factory=list)

    def principal(self, object_id: str) -> dict[str, Any] | None:
        for odata_type, objects in (("user", self.users), ("group", self.groups),
                                    ("servicePrincipal", self.service_principals)):
            for obj in objects:
                if obj["id"] == object_id:
                    return {"@odata.type": f"#microsoft.graph.{odata_type}", **obj}
        return None


def install(api: FakeApi, tenant: Tenant, tokens: Tokens, audience: str | None = None) -> None:
    """Graph's routes on `api`, accepting tokens from `tokens` issued for `audience` (by
    default the fake's own URL, which the source names as its `graph`)."""

    def authorised(request: Request, *needs: tuple[str, ...]) -> Response | None:
        """None if the bearer token is valid and holds one permission of each of `needs`."""
        problem, grant = tokens.grant(request, audience or api.url)
        if problem:
            message = {"missing": "Access token is empty.",
                       "expired": "Lifetime validation failed, the token is expired.",
                       "audience": "Access token validation failure. Invalid audience."}.get(
                problem, "Access token validation failure. Invalid signature.")
            return graph_error(401, "InvalidAuthenticationToken", message)
        if any(not set(anyof) & grant["scopes"] for anyof in needs):
            return forbidden()
        return None

    def collection(path: str, entity: str, items: Callable[[], list[dict[str, Any]]],
                   permissions: tuple[str, ...], *,
                   default: tuple[str, ...] = (), top: int | None = MAX_TOP,
                   expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                   extra: Callable[[Request, list[str]], Response | None] | None = None
                   ) -> None:
        """A listing: `$select` (else `default`, else every property), `$top` up to `top`
        (None: the endpoint takes no $top), `$expand=principal` through `expand`."""

        @api.route("GET", f"/v1.0/{path}", name=f"graph.{path}")
        def listing(request: Request) -> object:
            select = [s for s in request.args.get("$select", "").split(",") if s]
            # Sign-in activity is audit data: it needs AuditLog.Read.All besides the listing's.
            denied = authorised(request, permissions,
                                *([AUDIT_LOG] if "signInActivity" in select else []))
            if denied is not None:
                return denied
            refused = extra(request, select) if extra else None
            if refused is not None:
                return refused
            everything = items()
            # A collection's objects share their properties: the first one names them.
            known = set(default).union(everything[0] if everything else ())
            for name in select:
                if everything and name not in known:
                    return graph_error(400, "Request_BadRequest", f"Could not find a property "
                                       f"named '{name}' on type 'microsoft.graph.{entity}'.")
            size = 100
            if "$top" in request.args:
                if top is None:
                    return graph_error(400, "Request_UnsupportedQuery",
                                       "The query parameter '$top' is not supported.")
                try:
                    size = int(request.args["$top"])
                except ValueError:
                    size = 0
                if not 1 <= size <= top:
                    return graph_error(400, "Request_UnsupportedQuery", f"Invalid page size "
                                       f"specified: '{request.args['$top']}'. Must be between "
                                       f"1 and {top} inclusive.")
            if "signInActivity" in select:
                size = min(size, SIGN_IN_PAGE)
            wanted = request.args.get("$expand")
            if wanted is not None and (expand is None or wanted != "principal"):
                return graph_error(400, "Request_BadRequest",
                                   f"Could not find a navigation property named '{wanted}'.")
            try:
                page, token = page_of(everything, request.args.get("$skiptoken"),
                                      min(size, api.page_size))
            except ValueError:
                return graph_error(400, "Directory_InvalidPagingToken",
                                   "The specified page token value has expired or is invalid.")
            fields = select or list(default)
            body: dict[str, Any] = {
                "@odata.context": f"{api.url}/v1.0/$metadata#{path}"
                                  + (f"({','.join(fields)})" if select else ""),
                "value": [expand(item) if wanted else
                          ({name: item.get(name) for name in fields} if fields else item)
                          for item in page]}
            if token is not None:
                query = {k: v for k, v in request.args.items() if k != "$skiptoken"}
                body["@odata.nextLink"] = (f"{api.url}/v1.0/{path}?"
                                           f"{urlencode({**query, '$skiptoken': token})}")
            return body

    def singleton(path: str, item: Callable[[], dict[str, Any]]) -> None:
        @api.route("GET", f"/v1.0/{path}", name=f"graph.{path}")
        def get(request: Request) -> object:
            denied = authorised(request, POLICIES)
            if denied is not None:
                return denied
            return {"@odata.context": f"{api.url}/v1.0/$metadata#{path}/$entity", **item()}

    def licensed(request: Request, select: list[str]) -> Response | None:
        if "signInActivity" in select and not tenant.premium:
            return graph_error(403, UNLICENSED,
                               "Neither tenant is B2C or tenant doesn't have premium license")
        return None

    def registration_report(request: Request, select: list[str]) -> Response | None:
        if not tenant.premium:
            return graph_error(403, UNLICENSED,
                               "Neither tenant is B2C or tenant doesn't have premium license")
        return None

    def registered() -> list[dict[str, Any]]:
        enabled = {u["id"] for u in tenant.users if u.get("accountEnabled")}
        return [r for r in tenant.registrations if r["id"] in enabled]

    def with_principal(assignment: dict[str, Any]) -> dict[str, Any]:
        return {**assignment, "principal": tenant.principal(assignment["principalId"])}

    collection("users", "user", lambda: tenant.users, USERS, default=DEFAULT_USER_FIELDS,
               extra=licensed)
    collection("reports/authenticationMethods/userRegistrationDetails",
               "userRegistrationDetails", registered, AUDIT_LOG, extra=registration_report)
    collection("identity/conditionalAccess/policies", "conditionalAccessPolicy",
               lambda: tenant.conditional_access, CONDITIONAL_ACCESS, top=None)
    singleton("policies/identitySecurityDefaultsEnforcementPolicy",
              lambda: tenant.security_defaults)
    singleton("policies/authorizationPolicy", lambda: tenant.authorization_policy)
    collection("roleManagement/directory/roleDefinitions", "unifiedRoleDefinition",
               lambda: tenant.role_definitions, ROLES, top=None)
    collection("roleManagement/directory/roleAssignments", "unifiedRoleAssignment",
               lambda: tenant.role_assignments, ROLES, top=None, expand=with_principal)
    collection("applications", "application", lambda: tenant.applications, APPLICATIONS)
    collection("servicePrincipals", "servicePrincipal", lambda: tenant.service_principals,
               APPLICATIONS)


def start(tenant: Tenant, page_size: int = 5,
          permissions: Iterable[str] = GRANTED) -> tuple[FakeApi, microsoft_login.Directory]:
    """A started fake serving the login endpoints and Graph for `tenant`, with the demo's app
    registration, granted `permissions`."""
    api = FakeApi("entra", page_size=page_size)
    directory = microsoft_login.Directory()
    directory.register(tenant.id, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, permissions)
    microsoft_login.install(api, directory)
    install(api, tenant, directory.tokens)
    return api.start(), directory


def source_for(api: FakeApi, tenant_id: str, name: str = "entra-demo") -> dict[str, Any]:
    return {"name": name, "kind": "entra", "tenant_id": tenant_id, "authority_host": api.url,
            "graph": api.url, "ca_bundle": str(ca_file())}


def credential_env(tenant_id: str = DEMO_TENANT) -> dict[str, str]:
    return {"AZURE_TENANT_ID": tenant_id, "AZURE_CLIENT_ID": DEMO_CLIENT_ID,
            "AZURE_CLIENT_SECRET": DEMO_CLIENT_SECRET}


def start_demo(workdir: Path) -> DemoSource:
    from collector.demo.emulators.entra_seed import sample_tenant

    tenant, planted = sample_tenant(DEMO_TENANT)
    api, _ = start(tenant)
    return DemoSource(source=source_for(api, tenant.id), env=credential_env(tenant.id),
                      planted=planted, stop=api.stop)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_ago(days: float, now: datetime | None = None) -> str:
    return iso((now or datetime.now(UTC)) - timedelta(days=days))


def object_id(*names: str) -> str:
    """A stable object id for a seeded name, so that an unchanged seed gives equal evidence."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "annexa-entra:" + ":".join(names)))
