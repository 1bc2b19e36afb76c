"""The Azure RBAC actions the Azure connector needs, each with the one call that exercises it,
for `annexa doctor`; they follow config/azure/annexa-reader-role.json. They are asked of the
first configured subscription (else the first the credential lists); the Resource Graph query
of a source that names management groups, of its first group. Resource Graph leaves out
the rows a principal may not read instead of refusing, so each resource type's read is asked
of ARM with a listing of that type in the subscription; a read of what a resource holds (a
storage account's blob service, a server's auditing) is asked of the first one listed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.azure import graph
from connectors.azure.arm import SUBSCRIPTIONS_API, clients
from connectors.azure.kinds import KINDS, SUBSCRIPTION, Child, Kind
from connectors.azure.settings import Settings
from connectors.http import HttpClient, parse_json
from connectors.probing import Plan, Probe, Untested

POLICY = "config/azure/annexa-reader-role.json"
# The API versions of each type's listing (its children name their own).
LIST_API = {
    "Microsoft.Storage/storageAccounts": "2023-05-01",
    "Microsoft.KeyVault/vaults": "2023-07-01",
    "Microsoft.Network/networkSecurityGroups": "2023-09-01",
    "Microsoft.Sql/servers": "2021-11-01",
    "Microsoft.Sql/servers/databases": "2021-11-01",
    "Microsoft.DBforPostgreSQL/flexibleServers": "2022-12-01",
    "Microsoft.Web/sites": "2022-09-01",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
}


def child_action(type_: str, child: Child) -> str:
    """`/blobServices/default` of Microsoft.Storage/storageAccounts is read with
    Microsoft.Storage/storageAccounts/blobServices/read."""
    return f"{type_}/{child.path.split('/')[1]}/read"


class _Calls:
    def __init__(self, settings: Settings) -> None:
        api = clients(settings, None)
        self.arm: HttpClient = api.arm
        self.graph: HttpClient = api.graph
        self.configured = (settings.subscriptions or [None])[0]
        # Asked where the source asks: at its first management group, when it names some.
        self.asked_at: dict[str, list[str]] | None = (
            {"managementGroups": settings.management_groups[:1]}
            if settings.management_groups else None)
        self.subscription: str | None = self.configured
        self.listed: dict[str, list[Any]] = {}

    def get(self, path: str, api_version: str, operation: str) -> Any:
        return parse_json(self.arm.request("GET", path, operation=operation,
                                           params={"api-version": api_version}), operation)

    def sub(self) -> str:
        if self.subscription is None:
            raise Untested("no subscription to ask about")
        return self.subscription

    def read_subscription(self) -> None:
        if self.configured is not None:
            self.get(f"/subscriptions/{self.configured}", SUBSCRIPTIONS_API["api-version"],
                     "doctor:subscriptions.get")
            return
        answer = self.get("/subscriptions", SUBSCRIPTIONS_API["api-version"],
                          "doctor:subscriptions.list")
        found = answer.get("value") if isinstance(answer, dict) else None
        if found:
            self.subscription = found[0].get("subscriptionId")

    def query(self) -> None:
        resources = [kind for kind in KINDS if kind.table == "Resources"]
        body = {**(self.asked_at or {"subscriptions": [self.sub()]}),
                "query": graph.query("Resources", resources),
                "options": {"$top": 1, "resultFormat": "objectArray"}}
        self.graph.request("POST", graph.PATH, operation="doctor:resourcegraph.query",
                           params=graph.API, json_body=body)

    def list_type(self, type_: str) -> None:
        if type_.count("/") > 1:  # a nested type is listed under its first parent
            parent_type, _, child = type_.rpartition("/")
            path = f"{self.first(parent_type)}/{child}"
        else:
            path = f"/subscriptions/{self.sub()}/providers/{type_}"
        answer = self.get(path, LIST_API[type_], f"doctor:{type_}")
        self.listed[type_] = answer.get("value", []) if isinstance(answer, dict) else []

    def first(self, type_: str, child: Child | None = None) -> str:
        """The first resource of `type_` listed (that `child` applies to)."""
        if type_ not in self.listed:
            raise Untested(f"the listing of {type_} failed: none to ask about")
        found = [r for r in self.listed[type_] if child is None or child.applies(r)]
        if not found:
            raise Untested(f"no {type_} to ask about")
        return str(found[0]["id"])


def plan(settings: Settings) -> Plan:
    calls = _Calls(settings)

    def probe(action: str, call: str, run: Callable[[], Any]) -> Probe:
        return Probe(action, call, run, POLICY)

    def subscription_child(child: Child) -> Callable[[], Any]:
        return lambda: calls.get(f"/subscriptions/{calls.sub()}{child.path}", child.api_version,
                                 f"doctor:{child.name}")

    def resource_child(type_: str, child: Child) -> Callable[[], Any]:
        return lambda: calls.get(f"{calls.first(type_, child)}{child.path}", child.api_version,
                                 f"doctor:{child.name}")

    probes = [
        probe("Microsoft.Resources/subscriptions/read", "GET /subscriptions",
              calls.read_subscription),
        probe("Microsoft.ResourceGraph/resources/read", f"POST {graph.PATH}", calls.query),
        *(probe(f"{child.path.removeprefix('/providers/')}/read",
                f"GET /subscriptions/{{id}}{child.path}", subscription_child(child))
          for child in SUBSCRIPTION.children),
    ]
    kinds: list[Kind] = sorted(KINDS, key=lambda kind: kind.types[0].count("/"))
    for kind in kinds:
        type_ = kind.types[0]
        probes.append(probe(f"{type_}/read", f"GET (list) {type_}",
                            lambda type_=type_: calls.list_type(type_)))
        probes += [probe(child_action(type_, child), f"GET {{{type_}}}{child.path}",
                         resource_child(type_, child)) for child in kind.children]
    return Plan(probes, login=lambda: calls.arm.auth.apply({}),  # type: ignore[union-attr]
                login_call=f"an ARM token for tenant {settings.tenant_id}")
