"""Azure Resource Manager and Azure Resource Graph as the azure connector calls them, behind
the Microsoft identity platform's token service (microsoft_login), with the real paths,
api-versions, bodies, paging, error bodies and throttling headers.

Resource Graph answers the queries the connector sends (`<Table> | where type in~ (...) |
order by id asc`, and `in`, `=~`, `==`), with KQL's case rules: the `type` column is lower
case, so `in`/`==` match only lower-case types. Rows of subscriptions the caller cannot read
are left out, as Resource Graph's RBAC filtering does. Its quota (15 queries per 5 seconds per
caller by default) is announced in `x-ms-user-quota-remaining`/`-resets-after` and enforced
with 429 RateLimiting.

Management groups form a tree under the tenant root group (whose id is the tenant's); a
subscription sits in one group (the root unless placed). A query whose body names
`managementGroups` instead of `subscriptions` covers the subscriptions below those groups, and
also the rows that belong to a group itself rather than to a subscription (role assignments at
a group: `subscriptionId` empty); a group unknown, or in `Azure.denied_groups`, answers 403.
`resourcecontainers` holds a row per subscription, as Resource Graph serves it, with the
subscription's `properties.managementGroupAncestorsChain` (its group, then each above it).

ARM GETs answer from `Azure.answers` (path -> body, seeded per resource), 404 ResourceNotFound
otherwise; a subscription in `Azure.denied` answers 403 AuthorizationFailed to every call.

`start_demo()` seeds a tenant with two subscriptions: `prod`, well configured, and `dev`,
neglected, with one planted gap per resource beside a well-configured twin."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

from collector.demo.emulators import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_TENANT,
    DemoSource,
    microsoft_login,
)
from collector.demo.emulators.server import FakeApi, Handler, ca_file, json_response, page_of

ARM_AUDIENCE = "https://management.azure.com"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
TABLES = ("resources", "securityresources", "authorizationresources", "resourcecontainers")

# The api-versions whose answer shapes this emulator serves, by path.
API_VERSIONS: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern, re.I), frozenset(versions)) for pattern, versions in (
        (r"/subscriptions(/[^/]+)?", {"2020-01-01", "2022-12-01"}),
        (r"/providers/microsoft\.resourcegraph/resources", {"2021-03-01", "2022-10-01"}),
        (r".*/microsoft\.storage/storageaccounts/[^/]+/blobservices/default",
         {"2022-09-01", "2023-01-01", "2023-05-01"}),
        (r".*/microsoft\.sql/servers/[^/]+/(auditingsettings/default|firewallrules)",
         {"2021-11-01"}),
        (r".*/microsoft\.sql/servers/[^/]+/databases/[^/]+/transparentdataencryption/current",
         {"2021-11-01"}),
        (r".*/microsoft\.dbforpostgresql/flexibleservers/[^/]+/configurations/[^/]+",
         {"2022-12-01", "2023-06-01-preview"}),
        (r".*/microsoft\.web/sites/[^/]+/config/web", {"2022-03-01", "2022-09-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.insights/diagnosticsettings(/[^/]+)?",
         {"2021-05-01-preview"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.security/pricings(/[^/]+)?",
         {"2023-01-01", "2024-01-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.security/securitycontacts(/[^/]+)?",
         {"2023-12-01-preview"}),
        # The listings of one type in a subscription (or under a server), as ARM serves them.
        (r"/subscriptions/[^/]+/providers/microsoft\.storage/storageaccounts", {"2023-05-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.keyvault/vaults", {"2023-07-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.network/networksecuritygroups",
         {"2023-09-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.sql/servers", {"2021-11-01"}),
        (r".*/microsoft\.sql/servers/[^/]+/databases", {"2021-11-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.dbforpostgresql/flexibleservers",
         {"2022-12-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.web/sites", {"2022-09-01"}),
        (r"/subscriptions/[^/]+/providers/microsoft\.authorization/roleassignments",
         {"2022-04-01"}),
    ))

_QUERY = re.compile(
    r"^\s*(?P<table>\w+)\s*(\|\s*where\s+type\s+(?P<op>in~|in|=~|==)\s*(?P<rhs>\([^)]*\)|'[^']*'))?"
    r"\s*(?P<ordered>\|\s*order\s+by\s+id(\s+(?P<order>asc|desc))?)?\s*$", re.I)


def arm_error(status: int, code: str, message: str,
              headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def forbidden(client: str, action: str, scope: str) -> Response:
    return arm_error(403, "AuthorizationFailed",
                     f"The client '{client}' with object id '{client}' does not have "
                     f"authorization to perform action '{action}' over scope '{scope}' or the "
                     "scope is invalid. If access was recently granted, please refresh your "
                     "credentials.")


def _support() -> str:
    return (f"Please provide below info when asking for support: timestamp = "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S.0000000Z', time.gmtime())}, correlationId = "
            f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-"
            f"{secrets.token_hex(2)}-{secrets.token_hex(6)}.")


def _graph_error(status: int, code: str, detail_code: str, detail: str,
                 headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": _support(),
                                    "details": [{"code": detail_code, "message": detail}]}},
                         status, headers)


def _hms(seconds: float) -> str:
    whole = max(int(seconds + 0.999), 0)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def throttled(request: Request) -> Response:
    """A 429 as the service behind `request` sends it: Resource Graph's RateLimiting with an
    exhausted quota that resets now, ARM's SubscriptionRequestsThrottled with Retry-After 0,
    the token service's with Retry-After 0."""
    if "resourcegraph" in request.path.lower():
        return _graph_error(429, "RateLimiting", "RateLimiting",
                            "Client application has been throttled and should not attempt to "
                            "repeat the request until an amount of time has elapsed. Please see "
                            "https://aka.ms/resourcegraph-throttling for help.",
                            {"x-ms-user-quota-remaining": "0",
                             "x-ms-user-quota-resets-after": "00:00:00"})
    if "/oauth2/" in request.path:
        return json_response({"error": "temporarily_unavailable",
                              "error_description": "AADSTS50196: The server terminated an "
                                                   "operation because it encountered a client "
                                                   "request loop."}, 429, {"Retry-After": "0"})
    return arm_error(429, "SubscriptionRequestsThrottled",
                     "Number of 'read' requests for subscription exceeded the limit of '12000' "
                     "for time interval '01:00:00'. Please try again after '0' seconds.",
                     {"Retry-After": "0", "x-ms-ratelimit-remaining-subscription-reads": "0"})


@dataclass
class Azure:
    """One tenant's subscriptions, Resource Graph rows per table, and ARM answers per path."""

    tenant: str
    directory: microsoft_login.Directory
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    # Management group id (lower case) -> its display name and parent id (None: the root's).
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    placed: dict[str, str] = field(default_factory=dict)  # subscription -> its group
    denied_groups: set[str] = field(default_factory=set)
    group_rows: list[dict[str, Any]] = field(default_factory=list)  # rows of a group itself
    tables: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {t: {} for t in TABLES})
    answers: dict[str, Any] = field(default_factory=dict)
    quota: int = 15
    window: float = 5.0
    _window_start: float = 0.0
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Seeding

    def subscription(self, subscription_id: str, name: str) -> str:
        self.subscriptions[subscription_id.lower()] = {
            "id": f"/subscriptions/{subscription_id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "tags": {},
            "subscriptionId": subscription_id,
            "tenantId": self.tenant,
            "displayName": name,
            "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                                     "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
        }
        return f"/subscriptions/{subscription_id}"

    def resource(self, subscription_id: str, group: str, type_: str, name: str,
                 properties: dict[str, Any], *, location: str = "westeurope", kind: str = "",
                 sku: dict[str, Any] | None = None, table: str = "resources",
                 parent: str | None = None) -> str:
        """A Resource Graph row (whole, as the table holds it); returns its ARM id. A child
        type (Microsoft.Sql/servers/databases) names its `parent`'s id."""
        namespace, _, last = type_.rpartition("/")
        base = parent if parent else (f"/subscriptions/{subscription_id}/resourceGroups/{group}"
                                      f"/providers/{namespace}")
        resource_id = f"{base}/{last}/{name}"
        self.tables[table][resource_id.lower()] = {
            "id": resource_id, "name": name, "type": type_.lower(), "tenantId": self.tenant,
            "kind": kind, "location": location, "resourceGroup": group.lower(),
            "subscriptionId": subscription_id, "managedBy": "", "sku": sku, "plan": None,
            "properties": properties, "tags": {}, "identity": None, "zones": None,
            "extendedLocation": None,
        }
        return resource_id

    def role_assignment(self, subscription_id: str, role: str, principal: str,
                        principal_type: str = "User") -> str:
        scope = f"/subscriptions/{subscription_id}"
        name = f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-" \
               f"{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        resource_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        self.tables["authorizationresources"][resource_id.lower()] = {
            "id": resource_id, "name": name, "type": "microsoft.authorization/roleassignments",
            "tenantId": self.tenant, "kind": "", "location": "", "resourceGroup": "",
            "subscriptionId": subscription_id, "managedBy": "", "sku": None, "plan": None,
            "properties": {
                "roleDefinitionId": f"{scope}/providers/Microsoft.Authorization/"
                                    f"roleDefinitions/{role}",
                "principalId": principal, "principalType": principal_type, "scope": scope,
                "createdOn": "2024-01-15T09:00:00.0000000Z",
                "updatedOn": "2024-01-15T09:00:00.0000000Z",
                "createdBy": None, "updatedBy": None},
            "tags": None, "identity": None, "zones": None, "extendedLocation": None,
        }
        return resource_id

    def management_group(self, group_id: str, name: str, parent: str | None = None) -> str:
        """A management group below `parent` (default: the tenant root group)."""
        self.groups[group_id.lower()] = {"name": group_id, "displayName": name,
                                         "parent": parent.lower() if parent else None}
        return group_id

    def place(self, subscription_id: str, group_id: str) -> None:
        self.placed[subscription_id.lower()] = group_id.lower()

    def group_role_assignment(self, group_id: str, role: str, principal: str) -> str:
        """A role assignment at a management group: a row outside every subscription."""
        scope = f"/providers/Microsoft.Management/managementGroups/{group_id}"
        name = str(secrets.token_hex(16))
        resource_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        self.group_rows.append({
            "id": resource_id, "name": name, "type": "microsoft.authorization/roleassignments",
            "tenantId": self.tenant, "kind": "", "location": "", "resourceGroup": "",
            "subscriptionId": "", "managedBy": "", "sku": None, "plan": None,
            "properties": {"roleDefinitionId": f"/providers/Microsoft.Authorization/"
                                               f"roleDefinitions/{role}",
                           "principalId": principal, "principalType": "User", "scope": scope},
            "tags": None, "identity": None, "zones": None, "extendedLocation": None,
            "group": group_id.lower()})
        return resource_id

    def chain(self, group_id: str | None) -> list[str]:
        """`group_id` and every group above it up to the tenant root group, lower case."""
        out: list[str] = []
        at = group_id
        while at is not None and at != self.tenant.lower() and at not in out:
            out.append(at)
            at = (self.groups.get(at) or {}).get("parent")
        return [*out, self.tenant.lower()]

    def container_row(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Resource Graph's resourcecontainers table holds it."""
        sub = self.subscriptions[subscription_id.lower()]
        chain = [{"name": self.groups[g]["name"] if g in self.groups else self.tenant,
                  "displayName": self.groups[g]["displayName"] if g in self.groups
                  else "Tenant Root Group"}
                 for g in self.chain(self.placed.get(subscription_id.lower()))]
        return {"id": sub["id"], "name": sub["displayName"],
                "type": "microsoft.resources/subscriptions", "tenantId": self.tenant,
                "kind": "", "location": "", "resourceGroup": "",
                "subscriptionId": sub["subscriptionId"], "managedBy": "", "sku": None,
                "plan": None, "properties": {
                    "subscriptionPolicies": sub["subscriptionPolicies"],
                    "managementGroupAncestorsChain": chain, "state": sub["state"]},
                "tags": sub["tags"], "identity": None, "zones": None,
                "extendedLocation": None}

    def answer(self, path: str, body: Any) -> None:
        """What a GET of `path` (an ARM id and the child's path) answers."""
        self.answers[path.lower()] = body

    def row(self, resource_id: str) -> dict[str, Any]:
        for rows in self.tables.values():
            if resource_id.lower() in rows:
                return rows[resource_id.lower()]
        raise KeyError(resource_id)

    def remove(self, resource_id: str) -> None:
        for rows in self.tables.values():
            rows.pop(resource_id.lower(), None)
        prefix = resource_id.lower() + "/"
        for path in [p for p in self.answers if p.startswith(prefix)]:
            del self.answers[path]

    def reset(self) -> None:
        """Nothing seeded, nobody denied, a fresh quota window; the app stays registered."""
        self.subscriptions.clear()
        self.denied.clear()
        self.groups.clear()
        self.placed.clear()
        self.denied_groups.clear()
        self.group_rows.clear()
        for rows in self.tables.values():
            rows.clear()
        self.answers.clear()
        with self._lock:
            self._window_start, self._used = 0.0, 0

    # Quota

    def spend(self) -> tuple[int, float]:
        """(queries left in this window after this one, seconds until it resets)."""
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window:
                self._window_start, self._used = now, 0
            self._used += 1
            return self.quota - self._used, self.window - (now - self._window_start)


def _api_version(request: Request) -> Response | None:
    version = request.args.get("api-version")
    if not version:
        return arm_error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all "
                         "requests.")
    for pattern, versions in API_VERSIONS:
        if pattern.fullmatch(request.path):
            if version not in versions:
                return arm_error(400, "InvalidApiVersionParameter",
                                 f"The api-version '{version}' is invalid. The supported "
                                 f"versions are '{','.join(sorted(versions))}'.")
            return None
    return arm_error(400, "InvalidResourceType", f"The resource type of '{request.path}' "
                                                 "is not served by this emulator.")


def _action(path: str) -> str:
    """The RBAC action a GET of `path` needs: Microsoft.Security/pricings/read, say."""
    parts = path.strip("/").split("/")
    if "providers" not in [p.lower() for p in parts]:
        return "Microsoft.Resources/subscriptions/read"
    at = max(i for i, p in enumerate(parts) if p.lower() == "providers")
    rest = parts[at + 1:]
    types = [rest[0], *rest[1::2]]
    return "/".join(types) + "/read"


def _types(rhs: str) -> list[str]:
    return re.findall(r"'([^']*)'", rhs)


def install(api: FakeApi, azure: Azure) -> None:
    microsoft_login.install(api, azure.directory)

    def refused(request: Request) -> Response | None:
        problem, _ = azure.directory.tokens.grant(request, ARM_AUDIENCE)
        if not problem:
            return None
        code, message = {
            "missing": ("AuthenticationFailed",
                        "Authentication failed. The 'Authorization' header is missing."),
            "expired": ("ExpiredAuthenticationToken",
                        "The access token expiry UTC time is earlier than current UTC time."),
            "audience": ("InvalidAuthenticationTokenAudience",
                         "The access token has been obtained for wrong audience or resource."),
        }.get(problem, ("InvalidAuthenticationToken", "The access token is invalid."))
        return arm_error(401, code, message, {"WWW-Authenticate": (
            f'Bearer authorization_uri="{api.url}/{azure.tenant}", error="invalid_token", '
            f'error_description="{message}"')})

    def client(request: Request) -> str:
        _, grant = azure.directory.tokens.grant(request, ARM_AUDIENCE)
        return str(grant.get("subject", ""))

    def arm_route(method: str, pattern: str, name: str) -> Callable[[Handler], Handler]:
        """A route that ARM guards: a valid token for ARM, and a known api-version."""
        def register(handler: Handler) -> Handler:
            def guarded(request: Request, **groups: str) -> object:
                return refused(request) or _api_version(request) or handler(request, **groups)
            api.route(method, pattern, name=name)(guarded)
            return handler
        return register

    def arm_headers() -> dict[str, str]:
        return {"x-ms-ratelimit-remaining-subscription-reads": "11999",
                "x-ms-request-id": secrets.token_hex(16)}

    @arm_route("GET", r"(?i)/subscriptions", name="subscriptions.list")
    def list_subscriptions(request: Request) -> object:
        visible = [s for key, s in sorted(azure.subscriptions.items())
                   if key not in azure.denied]
        try:
            page, token = page_of(visible, request.args.get("$skiptoken"), api.page_size)
        except ValueError as exc:
            return arm_error(400, "InvalidSkipToken", str(exc))
        body: dict[str, Any] = {"value": page, "count": {"type": "Total",
                                                         "value": len(visible)}}
        if token:
            body["nextLink"] = (f"{api.url}/subscriptions?api-version="
                                f"{request.args['api-version']}&$skiptoken={token}")
        return json_response(body, headers=arm_headers())

    @arm_route("GET", r"(?i)/subscriptions/(?P<sub>[^/]+)", name="subscriptions.get")
    def get_subscription(request: Request, sub: str) -> object:
        if sub.lower() in azure.denied:
            return forbidden(client(request), "Microsoft.Resources/subscriptions/read",
                             f"/subscriptions/{sub}")
        if sub.lower() not in azure.subscriptions:
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not "
                                                          "be found.")
        return json_response(azure.subscriptions[sub.lower()], headers=arm_headers())

    @arm_route("POST", r"(?i)/providers/Microsoft\.ResourceGraph/resources",
               name="resourcegraph.query")
    def resource_graph(request: Request) -> object:
        left, resets = azure.spend()
        quota = {"x-ms-user-quota-remaining": str(max(left, 0)),
                 "x-ms-user-quota-resets-after": _hms(resets)}
        if left < 0:
            return _graph_error(429, "RateLimiting", "RateLimiting",
                                "Client application has been throttled and should not attempt "
                                "to repeat the request until an amount of time has elapsed. "
                                "Please see https://aka.ms/resourcegraph-throttling for help.",
                                quota)
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _graph_error(400, "BadRequest", "InvalidRequestContent",
                                "The request content was invalid and could not be "
                                "deserialized.", quota)
        options = body.get("options") or {}
        top = options.get("$top", 100)
        if not isinstance(top, int) or not 1 <= top <= 1000:
            return _graph_error(400, "BadRequest", "InvalidRequestParameter",
                                "The $top value must be between 1 and 1000.", quota)
        if options.get("resultFormat", "objectArray") != "objectArray":
            return _graph_error(400, "BadRequest", "UnsupportedResultFormat",
                                "This emulator returns objectArray results only.", quota)
        match = _QUERY.match(body["query"])
        if match is None or match["table"].lower() not in TABLES:
            return _graph_error(400, "BadRequest", "InvalidQuery",
                                "Query is invalid. Please refer to the documentation for the "
                                "Azure Resource Graph service and fix the error before "
                                "retrying.", quota)
        asked, groups = body.get("subscriptions"), body.get("managementGroups")
        readable = {k for k in azure.subscriptions if k not in azure.denied}
        if asked is not None:
            readable &= {str(s).lower() for s in asked}
        table = match["table"].lower()
        stored = list(azure.tables[table].values())
        if table == "resourcecontainers":
            stored += [azure.container_row(k) for k in sorted(azure.subscriptions)]
        below: set[str] = set()
        if groups is not None:
            for group in (str(g).lower() for g in groups):
                if group in azure.denied_groups or (group not in azure.groups
                                                    and group != azure.tenant.lower()):
                    return forbidden(client(request), "Microsoft.Management/managementGroups/read",
                                     f"/providers/Microsoft.Management/managementGroups/{group}")
            asked_groups = {str(g).lower() for g in groups}
            readable = {k for k in readable
                        if asked_groups & set(azure.chain(azure.placed.get(k)))}
            below = {g for g in [*azure.groups, azure.tenant.lower()]
                     if asked_groups & set(azure.chain(g))}
            if table == "authorizationresources":
                stored += [r for r in azure.group_rows if r["group"] in below]
        rows = [{k: v for k, v in r.items() if k != "group"} for r in stored
                if r["subscriptionId"].lower() in readable or r.get("group") in below]
        if match["op"]:
            wanted = _types(match["rhs"])
            if match["op"].endswith("~"):
                folded = {t.lower() for t in wanted}
                rows = [r for r in rows if r["type"].lower() in folded]
            else:
                rows = [r for r in rows if r["type"] in set(wanted)]
        if match["ordered"]:
            # KQL sorts in descending order unless told otherwise.
            rows.sort(key=lambda r: r["id"].lower(),
                      reverse=(match["order"] or "desc").lower() == "desc")
        try:
            page, token = page_of(rows, options.get("$skipToken"), min(top, api.page_size))
        except ValueError:
            return _graph_error(400, "BadRequest", "InvalidSkipToken",
                                "The skip token is invalid.", quota)
        answer: dict[str, Any] = {"totalRecords": len(rows), "count": len(page),
                                  "resultTruncated": "false", "facets": [], "data": page}
        if token:
            answer["$skipToken"] = token
        return json_response(answer, headers=quota)

    @arm_route("GET", r"(?i)/subscriptions/(?P<sub>[^/]+)/.+", name="arm.get")
    def arm_get(request: Request, sub: str) -> object:
        if sub.lower() in azure.denied:
            return forbidden(client(request), _action(request.path), f"/subscriptions/{sub}")
        body = azure.answers.get(request.path.lower())
        if body is None:
            body = _listing(azure, sub, request.path)
        if body is None:
            return arm_error(404, "ResourceNotFound",
                             f"The Resource '{request.path}' was not found. For more details "
                             "please go to https://aka.ms/ARMResourceNotFoundFix")
        return json_response(body, headers=arm_headers())


def _listing(azure: Azure, sub: str, path: str) -> dict[str, Any] | None:
    """ARM's listing of one resource type in a subscription
    (/subscriptions/{id}/providers/{namespace}/{type}) or under a resource ({id}/{type}),
    from the rows Resource Graph holds."""
    match = re.fullmatch(r"(?i)/subscriptions/[^/]+/providers/([^/]+/[^/]+)", path)
    if match is not None:
        wanted, under = match[1].lower(), None
    else:
        parent, _, child = path.rpartition("/")
        rows = [r for table in azure.tables.values() for r in table.values()
                if r["id"].lower() == parent.lower()]
        if not rows:
            return None
        wanted, under = f"{rows[0]['type'].lower()}/{child.lower()}", parent.lower() + "/"
    value = [row for table in azure.tables.values() for row in table.values()
             if row["type"].lower() == wanted and row["subscriptionId"].lower() == sub.lower()
             and (under is None or row["id"].lower().startswith(under))]
    return {"value": value} if value or match is not None else None


def start(page_size: int = 5, tenant: str = DEMO_TENANT) -> tuple[FakeApi, Azure]:
    """A started emulator with the demo's app registered in `tenant` and nothing seeded."""
    directory = microsoft_login.Directory()
    directory.register(tenant, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    azure = Azure(tenant, directory)
    api = FakeApi("azure", page_size=page_size)
    api.data["azure"] = azure
    install(api, azure)
    return api.start(), azure


def source(api: FakeApi, name: str = "azure-demo", tenant: str = DEMO_TENANT,
           **options: Any) -> dict[str, Any]:
    """The source configuration that points an `azure` source at this emulator."""
    return {"name": name, "kind": "azure", "tenant_id": tenant, "authority_host": api.url,
            "resource_manager": api.url, "ca_bundle": str(ca_file()), **options}


def credentials_env(tenant: str = DEMO_TENANT) -> dict[str, str]:
    """The environment that DefaultAzureCredential's EnvironmentCredential reads."""
    return {"AZURE_TENANT_ID": tenant, "AZURE_CLIENT_ID": DEMO_CLIENT_ID,
            "AZURE_CLIENT_SECRET": DEMO_CLIENT_SECRET}


def start_demo(workdir: Path) -> DemoSource:
    from collector.demo.emulators.azure_sample import seed

    api, azure = start()
    planted = seed(azure)
    return DemoSource(source={**source(api), "schedule": "15m"}, env=credentials_env(),
                      planted=planted, stop=api.stop)
