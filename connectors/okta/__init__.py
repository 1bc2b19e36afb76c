"""The Okta connector: users (with their factors and admin roles, deprovisioned ones too), the
global session, password, authenticator-enrolment and authentication policies with their
rules, authenticators, apps, API tokens and network zones of one org, from the management API
v1 over plain HTTPS with an SSWS token or an OAuth 2.0 service app. It never judges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.http import HttpError, Observer
from connectors.http.auth import CredentialError
from connectors.okta.api import client, org_scope
from connectors.okta.listings import API_TOKEN, APP, AUTHENTICATOR, LISTINGS, POLICY, ZONE
from connectors.okta.settings import Settings
from connectors.okta.users import ROLE_ASSIGNMENT, USER, fatal, users
from connectors.streams import interleave

__all__ = ["KINDS", "Settings", "SourceUnreachable", "collect"]

KINDS = (USER, ROLE_ASSIGNMENT, POLICY, AUTHENTICATOR, APP, API_TOKEN, ZONE)


# The kinds whose listing errors them when it fails: an empty one is empty, not unread.
LISTED = (USER, *(kind for listing in LISTINGS for kind in listing.kinds))


class SourceUnreachable(RuntimeError):
    """No credentials, credentials the org refuses (a revoked token, another org's), or no
    answer: nothing can be collected."""


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """Yield the org's Scope, then its resources as the listings run side by side, with a
    CollectionError for each listing the org refused. Raises SourceUnreachable when the org
    cannot be read at all."""
    try:
        api = client(settings, observer)
        api.auth.apply({})  # type: ignore[union-attr]
    except CredentialError as exc:
        raise SourceUnreachable(f"no credentials for {settings.org_url}: {exc}") from exc
    # Every listing errors its kinds when it fails, so a kind with no resource is empty.
    scope = replace(org_scope(settings), kinds=LISTED)
    yield scope
    tasks: list[Callable[[], Iterator[Resource | CollectionError]]] = [
        partial(_guarded, "users", (USER,), partial(users, api, scope, settings.workers),
                scope),
        *(partial(_guarded, listing.name, listing.kinds, partial(listing.fetch, api, scope),
                  scope) for listing in LISTINGS)]
    yield from interleave(tasks, settings.workers)


def _guarded(name: str, kinds: tuple[str, ...],
             fetch: Callable[[], Iterator[Resource | CollectionError]],
             scope: Scope) -> Iterator[Resource | CollectionError]:
    try:
        yield from fetch()
    except HttpError as exc:
        if fatal(exc):
            raise SourceUnreachable(str(exc)) from exc
        yield scope.error(name, ALL_REGIONS, kinds, str(exc))

