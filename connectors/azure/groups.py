"""The subscriptions below named management groups, read from Resource Graph's
resourcecontainers table in one paged query scoped to the groups (the request's
`managementGroups`), as it is for the resource tables after it: no ARM call per group or per
subscription."""

from __future__ import annotations

from typing import Any

from connectors.azure import graph
from connectors.azure.arm import SourceUnreachable, Subscription, subscription_scope
from connectors.azure.settings import Settings
from connectors.http import HttpClient, HttpError, MalformedResponse

OPERATION = "resourcecontainers.query"
QUERY = ("resourcecontainers | where type =~ 'microsoft.resources/subscriptions' "
         "| order by id asc")


def scope_of(settings: Settings) -> dict[str, list[str]]:
    """What a query of this source is asked against: its unit's group, else every named
    group (Resource Graph answers each row once, however the groups nest)."""
    return {"managementGroups": [settings.unit] if settings.unit
            else list(settings.management_groups or ())}


def _ancestors(row: dict[str, Any]) -> list[str]:
    chain = (row.get("properties") or {}).get("managementGroupAncestorsChain")
    if not isinstance(chain, list) or not all(
            isinstance(link, dict) and isinstance(link.get("name"), str) for link in chain):
        raise MalformedResponse(OPERATION, f"subscription {row.get('subscriptionId')} without "
                                           "its managementGroupAncestorsChain")
    return [link["name"].lower() for link in chain]


def _data(row: dict[str, Any], ancestors: list[str]) -> dict[str, Any]:
    """The subscription under the names ARM's GET /subscriptions gives its fields, with the
    groups above it."""
    properties = row.get("properties") or {}
    return {"id": row["id"], "subscriptionId": row["subscriptionId"],
            "tenantId": row.get("tenantId"), "displayName": row.get("name"),
            "state": properties.get("state"),
            "subscriptionPolicies": properties.get("subscriptionPolicies"),
            "tags": row.get("tags") or {}, "managementGroupAncestors": ancestors}


def subscriptions(client: HttpClient, settings: Settings) -> tuple[list[Subscription], set[str]]:
    """The subscriptions this source (or unit) collects, and those below its groups that an
    earlier-named group's unit collects (lower-case ids). Raises SourceUnreachable when the
    groups cannot be read, or hold no subscription the credential can read."""
    named = ", ".join(scope_of(settings)["managementGroups"])
    earlier = set(settings.earlier_groups)
    body = {**scope_of(settings), "query": QUERY,
            "options": {"$top": graph.PAGE_ROWS, "resultFormat": "objectArray"}}
    kept: list[Subscription] = []
    elsewhere: set[str] = set()
    try:
        for page in graph.paged(client, body, OPERATION):
            for row in page:
                _, type_, subscription_id = graph.row_fields(row, OPERATION)
                if type_ != "microsoft.resources/subscriptions":
                    raise MalformedResponse(OPERATION, f"a row of type {type_}, not asked for")
                ancestors = _ancestors(row)
                if earlier & set(ancestors):
                    elsewhere.add(subscription_id.lower())
                else:
                    kept.append(Subscription(subscription_scope(subscription_id),
                                             _data(row, ancestors)))
    except HttpError as exc:
        raise SourceUnreachable(f"cannot read the subscriptions of management group(s) "
                                f"{named} of tenant {settings.tenant_id}: {exc}") from exc
    if not kept and not elsewhere:
        raise SourceUnreachable(f"management group(s) {named} of tenant {settings.tenant_id} "
                                "hold no subscription the credential can read: assign it "
                                "Reader on the group")
    return kept, elsewhere


def outside_subscriptions(row: Any) -> bool:
    """A row of a management group itself (a role assignment at the group), which a query
    scoped to groups returns beside the subscriptions' rows: it is in no subscription."""
    return isinstance(row, dict) and not row.get("subscriptionId") and str(
        row.get("id", "")).lower().startswith("/providers/microsoft.management/managementgroups/")

