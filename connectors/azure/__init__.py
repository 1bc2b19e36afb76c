"""The Azure connector: streams the subscriptions of one tenant and their resources, read
through Azure Resource Graph across all subscriptions at once, with ARM reads only for what
Resource Graph does not hold. It never judges."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.azure import graph, groups
from connectors.azure.arm import (
    Clients,
    SourceUnreachable,
    Subscription,
    clients,
    read_children,
    subscriptions,
)
from connectors.azure.kinds import ALL_KINDS, SUBSCRIPTION, Kind, by_type, tables
from connectors.azure.settings import Settings
from connectors.http import HttpClient, HttpError, MalformedResponse, Observer

__all__ = ["Settings", "SourceUnreachable", "collect"]


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """Yield every subscription's Scope first; then the subscriptions themselves with their
    subscription-wide settings; then the resources of each Resource Graph table. A
    subscription that cannot be read is a CollectionError for its kinds; a table that cannot
    be read, one for that table's kinds in each subscription. With management_groups, the
    subscriptions are those below the groups (below this unit's group, less those below an
    earlier-named one), and every query is scoped to the groups. Raises SourceUnreachable
    when no subscription can be identified."""
    api = clients(settings, observer)
    elsewhere: set[str] = set()
    if settings.management_groups:
        found, elsewhere = groups.subscriptions(api.graph, settings)
    else:
        found = list(subscriptions(api.arm, settings))
    readable = [s for s in found if s.data is not None]
    for subscription in found:
        yield subscription.scope
    for subscription in found:
        if subscription.problem is not None:
            yield subscription.scope.error("subscriptions", ALL_REGIONS, ALL_KINDS,
                                           subscription.problem)
    # Child reads are one request each: a page's worth at a time go out in parallel.
    pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="annexa-azure")
    try:
        yield from pool.map(lambda s: _subscription(api.arm, s), readable)
        scopes = {s.scope.id.removeprefix("/subscriptions/").lower(): s.scope for s in readable}
        asked = groups.scope_of(settings) if settings.management_groups \
            else {"subscriptions": sorted(scopes)}
        for table, kinds in tables().items():
            if scopes:
                yield from _table(api, pool, table, kinds, scopes, asked, elsewhere)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _subscription(arm: HttpClient, subscription: Subscription) -> Resource:
    data = dict(subscription.data or {})
    read_children(arm, data, subscription.scope.key, SUBSCRIPTION)
    return subscription.scope.resource(SUBSCRIPTION.kind, data["id"], data)


def _table(api: Clients, pool: ThreadPoolExecutor, table: str, kinds: list[Kind],
           scopes: dict[str, Scope], asked: dict[str, list[str]], elsewhere: set[str]
           ) -> Iterator[Resource | CollectionError]:
    """The table's rows in `scopes`; those of `elsewhere` (an earlier unit's subscriptions)
    and of management groups themselves are dropped, anything else is a malformed answer."""
    types = by_type()
    wanted = {type_.lower() for kind in kinds for type_ in kind.types}
    operation = f"{table}.query"

    def resource(row: dict[str, Any]) -> Resource:
        key, type_, subscription_id = graph.row_fields(row, operation)
        kind = types[type_]
        read_children(api.arm, row, key, kind)
        return scopes[subscription_id.lower()].resource(kind.kind, key, row,
                                                        region=row.get("location") or "global")

    try:
        for page in graph.pages(api.graph, table, kinds, asked):
            mine = []
            for row in page:
                if "managementGroups" in asked and groups.outside_subscriptions(row):
                    continue
                _, type_, subscription_id = graph.row_fields(row, operation)
                if subscription_id.lower() in elsewhere:
                    continue
                if type_ not in wanted or subscription_id.lower() not in scopes:
                    raise MalformedResponse(operation, f"a row of type {type_} in subscription "
                                                       f"{subscription_id}, not asked for")
                mine.append(row)
            yield from pool.map(resource, mine)
            del page, mine  # not held while the next page is fetched
    except HttpError as exc:
        names = tuple(kind.kind for kind in kinds)
        for scope in scopes.values():
            yield scope.error("resourcegraph", ALL_REGIONS, names, str(exc))
