"""The Entra ID connector: users with their sign-in activity and authentication-method
registration, Conditional Access policies, security defaults, the authorization policy,
directory roles and their assignments, applications and service principals with their
credentials, all from Microsoft Graph v1.0 of one tenant. It never judges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.entra.directory import LISTINGS, Listing
from connectors.entra.graph import Graph
from connectors.entra.settings import Settings
from connectors.http import HttpError, Observer
from connectors.http.auth import CredentialError
from connectors.streams import interleave

__all__ = ["Settings", "collect"]


class SourceUnreachable(RuntimeError):
    """No token for the tenant, or Graph does not answer: nothing can be collected."""


def tenant_scope(tenant_id: str) -> Scope:
    key = f"entra:tenant:{tenant_id}"
    return Scope(provider="entra", id=key, key=key,
                 kinds=tuple(kind for listing in LISTINGS for kind in listing.kinds))


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """Yield the tenant's Scope, then its resources, and a CollectionError for each listing
    that Graph refused. Raises SourceUnreachable when no token can be had for the tenant or
    Graph gives no answer at all."""
    graph = Graph(settings, observer)
    try:
        graph.auth.apply({})
    except CredentialError as exc:
        raise SourceUnreachable(f"no token for tenant {settings.tenant_id}: {exc}") from exc
    scope = tenant_scope(settings.tenant_id)
    yield scope
    tasks: list[Callable[[], Iterator[Resource | CollectionError]]] = [
        partial(_listing, listing, graph, scope) for listing in LISTINGS]
    yield from interleave(tasks, settings.workers)


def _listing(listing: Listing, graph: Graph, scope: Scope
             ) -> Iterator[Resource | CollectionError]:
    try:
        yield from listing.fetch(graph, scope)
    except HttpError as exc:
        if exc.status == 0:
            raise SourceUnreachable(str(exc)) from exc
        yield scope.error(listing.name, ALL_REGIONS, listing.kinds, str(exc))
