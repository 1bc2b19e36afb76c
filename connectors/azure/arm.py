"""Azure Resource Manager: the credential and the clients of one source, the subscriptions to
read, and the per-resource GETs of what Resource Graph does not hold."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from collector.model import Scope
from connectors.azure.kinds import ALL_KINDS, Kind
from connectors.azure.settings import Settings
from connectors.http import (
    HttpClient,
    HttpError,
    MalformedResponse,
    Observer,
    RateLimits,
    detail,
    paging,
    pinned_session,
    trust,
)
from connectors.http.auth import TokenCredentialAuth

SUBSCRIPTIONS_API = {"api-version": "2022-12-01"}
# Resource Graph's quota: a number of queries per user in a window of hh:mm:ss; the answers
# carry both, so the client waits for the window to reset instead of running into a 429.
GRAPH_LIMITS = RateLimits(remaining="x-ms-user-quota-remaining",
                          reset="x-ms-user-quota-resets-after", reset_format="duration")


class SourceUnreachable(RuntimeError):
    """No subscription could be identified: nothing can be collected from this source."""


@dataclass
class Clients:
    arm: HttpClient
    graph: HttpClient


def clients(settings: Settings, observer: Observer | None) -> Clients:
    from azure.identity import DefaultAzureCredential

    endpoints = settings.endpoints
    credential = DefaultAzureCredential(
        authority=endpoints.authority_host,
        # An authority of our own choosing is not in Microsoft's instance metadata.
        disable_instance_discovery=settings.authority_host is not None,
        # Token calls trust what the source's ARM calls trust (azure-core passes it as
        # `verify`, which REQUESTS_CA_BUNDLE cannot override).
        connection_verify=trust(settings.ca_bundle),
        additionally_allowed_tenants=[settings.tenant_id])
    auth = TokenCredentialAuth(credential, f"{endpoints.audience}/.default",
                               tenant_id=settings.tenant_id)
    session = pinned_session(settings.ca_bundle)
    common: dict[str, Any] = {"settings": settings, "auth": auth, "observer": observer,
                              "session": session}
    return Clients(HttpClient(endpoints.resource_manager, service="arm", **common),
                   HttpClient(endpoints.resource_manager, service="resourcegraph",
                              limits=GRAPH_LIMITS, **common))


def subscription_scope(subscription_id: str) -> Scope:
    key = f"/subscriptions/{subscription_id}"
    return Scope(provider="azure", id=key, key=key, kinds=ALL_KINDS)


def _checked(subscription: Any, operation: str) -> dict[str, Any]:
    if not isinstance(subscription, dict) or not isinstance(
            subscription.get("subscriptionId"), str) or not isinstance(
            subscription.get("id"), str):
        raise MalformedResponse(operation, "a subscription without id and subscriptionId")
    return subscription


@dataclass
class Subscription:
    """A subscription to collect: its data when readable, else why it is not."""

    scope: Scope
    data: dict[str, Any] | None
    problem: str | None = None


def subscriptions(arm: HttpClient, settings: Settings) -> Iterator[Subscription]:
    """The configured subscriptions, each read or refused on its own; without configured ones,
    every subscription the credential can list. Raises SourceUnreachable when the credential
    is refused, or when there is nothing to collect."""
    if settings.subscriptions is None:
        yield from _listed(arm, settings.tenant_id)
        return
    for subscription_id in settings.subscriptions:
        operation = "subscriptions.get"
        try:
            data = _checked(arm.get_json(f"/subscriptions/{subscription_id}",
                                         operation=operation, params=SUBSCRIPTIONS_API),
                            operation)
        except HttpError as exc:
            if exc.status in (0, 401):
                raise SourceUnreachable(f"cannot read subscription {subscription_id} of tenant "
                                        f"{settings.tenant_id}: {exc}") from exc
            yield Subscription(subscription_scope(subscription_id), None, str(exc))
        else:
            yield Subscription(subscription_scope(data["subscriptionId"]), data)


def _listed(arm: HttpClient, tenant: str) -> Iterator[Subscription]:
    operation = "subscriptions.list"
    try:
        listed = [_checked(item, operation)
                  for page in paging.next_link(arm, "/subscriptions", operation=operation,
                                               params=SUBSCRIPTIONS_API)
                  for item in page]
    except HttpError as exc:
        raise SourceUnreachable(f"cannot list the subscriptions of tenant {tenant}: {exc}"
                                ) from exc
    if not listed:
        raise SourceUnreachable(f"the credential can list no subscription of tenant {tenant}: "
                                "assign it Reader on the subscriptions to collect")
    for data in listed:
        yield Subscription(subscription_scope(data["subscriptionId"]), data)


def read_children(arm: HttpClient, data: dict[str, Any], resource_id: str, kind: Kind) -> None:
    """The ARM reads of `kind` for one resource, each into data[child.name]; a failed read is
    recorded for the checks that need it, never left to look like an empty answer."""
    for child in kind.children:
        if not child.applies(data):
            continue
        path = f"{resource_id}{child.path}"
        params = {"api-version": child.api_version}
        if child.listing:
            def call(path: str = path, params: dict[str, str] = params,
                     operation: str = child.name) -> list[Any]:
                return [item for page in paging.next_link(arm, path, operation=operation,
                                                          params=params) for item in page]
        else:
            def call(path: str = path, params: dict[str, str] = params,
                     operation: str = child.name) -> Any:
                return arm.get_json(path, operation=operation, params=params)
        # No status means "none" here: each of these reads has an answer for every resource
        # that exists, so a 404 is a read that failed (the resource went away meanwhile).
        detail(data, child.name, call, absent=())
