"""The Okta management API v1 of one org: an HttpClient with the source's credentials and
Okta's rate-limit headers, and how its objects become resources (`okta:<kind>:<id>`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import requests

from collector.model import Resource, Scope
from connectors.http import (
    HttpClient,
    MalformedResponse,
    Observer,
    RateLimits,
    paging,
    pinned_session,
)
from connectors.okta.auth import ServiceAppAuth, token_auth
from connectors.okta.settings import Settings

SERVICE = "okta"


def limits(settings: Settings) -> RateLimits:
    """Okta names the calls left in the window and its end in epoch seconds on every answer,
    and a 429 carries the same headers: the client pauses before the window runs out, keeping
    a call back for each that may be in flight (the listings' workers, and as many fetching
    factors), and a 429 waits for the reset."""
    return RateLimits(remaining="X-Rate-Limit-Remaining", reset="X-Rate-Limit-Reset",
                      reset_format="epoch", reserve=2 * settings.workers)


def client(settings: Settings, observer: Observer | None = None) -> HttpClient:
    session: requests.Session = pinned_session(settings.ca_bundle)
    auth = ServiceAppAuth(settings, session) if settings.service_app else token_auth(settings)
    return HttpClient(settings.org_url, service=SERVICE, settings=settings, auth=auth,
                      observer=observer, limits=limits(settings), session=session)


def org_scope(settings: Settings) -> Scope:
    key = f"okta:org:{settings.host}"
    return Scope(provider="okta", id=key, key=key)


def identified(item: Any, operation: str) -> dict[str, Any]:
    """An object as Okta sent it, without its `_links` (URLs of related calls, not evidence);
    one without an id cannot be told apart from the others, so its listing is not trusted."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise MalformedResponse(operation, "an object in the answer has no id")
    return {name: value for name, value in item.items() if name != "_links"}


def objects(api: HttpClient, path: str, operation: str,
            params: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Pages of a listing that Okta pages with `Link: <...>; rel="next"`."""
    for page in paging.link_header(api, path, operation=operation, params=params):
        yield [identified(item, operation) for item in page]


def resources(scope: Scope, kind: str,
              pages: Iterator[list[dict[str, Any]]]) -> Iterator[Resource]:
    name = kind.removeprefix("okta.")
    for page in pages:
        for item in page:
            yield scope.resource(kind, f"okta:{name}:{item['id']}", item)
