"""The paging styles of the HTTPS APIs, each a generator of pages (lists of items) so that a
connector streams a listing of any size.

A page that is not the documented shape raises MalformedResponse; so does a next link or
token that repeats (a server that would page for ever), and more than `max_pages` pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from connectors.http.client import HttpClient, parse_json
from connectors.http.errors import HttpError, MalformedResponse

MAX_PAGES = 1_000_000
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]+)"?')


def _items(page: Any, key: str, operation: str) -> list[Any]:
    if not isinstance(page, dict):
        raise MalformedResponse(operation, f"a page is a {type(page).__name__}, not an object")
    items = page.get(key, [])
    if not isinstance(items, list):
        raise MalformedResponse(operation, f"{key!r} of a page is not a list")
    return items


class _Guard:
    def __init__(self, operation: str, max_pages: int) -> None:
        self.operation, self.max_pages = operation, max_pages
        self.seen: set[str] = set()

    def next(self, marker: Any) -> str | None:
        if marker in (None, ""):
            return None
        if not isinstance(marker, str):
            raise MalformedResponse(self.operation, "the next-page marker is not a string")
        if marker in self.seen:
            raise MalformedResponse(self.operation, "paging repeats a page (the listing loops)")
        if len(self.seen) >= self.max_pages:
            raise MalformedResponse(self.operation, f"more than {self.max_pages} pages")
        self.seen.add(marker)
        return marker


def next_link(client: HttpClient, path: str, *, operation: str, items: str = "value",
              link: str | Sequence[str] = "nextLink", params: Mapping[str, Any] | None = None,
              max_pages: int = MAX_PAGES) -> Iterator[list[Any]]:
    """ARM's `nextLink`, Microsoft Graph's `@odata.nextLink`, Okta's `_links.next.href` (a
    path of field names): the next page's whole URL, its query included."""
    guard = _Guard(operation, max_pages)
    url: str | None = path
    query = params
    fields = (link,) if isinstance(link, str) else tuple(link)
    while url is not None:
        page = client.get_json(url, operation=operation, params=query)
        yield _items(page, items, operation)
        marker: Any = page
        for name in fields:
            marker = marker.get(name) if isinstance(marker, dict) else None
        url, query = guard.next(marker), None


def page_token(client: HttpClient, path: str, *, operation: str, items: str,
               params: Mapping[str, Any] | None = None, token_param: str = "pageToken",
               token_field: str = "nextPageToken",
               max_pages: int = MAX_PAGES) -> Iterator[list[Any]]:
    """Google's `nextPageToken`, sent back as `pageToken` with the same query."""
    guard = _Guard(operation, max_pages)
    query = dict(params or {})
    while True:
        page = client.get_json(path, operation=operation, params=query)
        yield _items(page, items, operation)
        token = guard.next(page.get(token_field))
        if token is None:
            return
        query[token_param] = token


def skip_token(client: HttpClient, path: str, *, operation: str, body: Mapping[str, Any],
               items: str = "data", params: Mapping[str, Any] | None = None,
               max_pages: int = MAX_PAGES) -> Iterator[list[Any]]:
    """Azure Resource Graph: the query is POSTed again with `options.$skipToken` from the
    last answer's `$skipToken`. An answer that says its result was truncated with no token
    to go on with has lost rows: it is refused rather than taken for the whole listing."""
    guard = _Guard(operation, max_pages)
    request = dict(body)
    while True:
        page = client.post_json(path, operation=operation, body=request, params=params)
        yield _items(page, items, operation)
        if page.get("resultTruncated") == "true" and not page.get("$skipToken"):
            raise MalformedResponse(operation, "the result was truncated and cannot be paged "
                                               "(the query must return the id column)")
        token = guard.next(page.get("$skipToken"))
        # Let the last page go before the next is fetched: two pages of 1,000 rows at once
        # would double what a listing costs in memory.
        del page
        if token is None:
            return
        request = {**request, "options": {**(request.get("options") or {}), "$skipToken": token}}


def link_header(client: HttpClient, path: str, *, operation: str,
                params: Mapping[str, Any] | None = None,
                max_pages: int = MAX_PAGES) -> Iterator[list[Any]]:
    """Okta and GitHub REST: a JSON list per page, the next page's URL in `Link: <...>;
    rel="next"`."""
    guard = _Guard(operation, max_pages)
    url: str | None = path
    query = params
    while url is not None:
        response = client.request("GET", url, operation=operation, params=query)
        page = parse_json(response, operation)
        if not isinstance(page, list):
            raise MalformedResponse(operation, f"a page is a {type(page).__name__}, not a list")
        yield page
        url, query = guard.next(links(response.headers.get("Link", "")).get("next")), None


def links(header: str) -> dict[str, str]:
    """RFC 8288 Link header: relation -> URL."""
    return {rel: url for url, rel in _LINK.findall(header)}


def graphql(client: HttpClient, path: str, *, operation: str, query: str,
            variables: Mapping[str, Any], connection: Sequence[str],
            cursor: str = "cursor", max_pages: int = MAX_PAGES,
            on_partial: Callable[[list[dict[str, Any]]], None] | None = None
            ) -> Iterator[dict[str, Any]]:
    """GraphQL cursor paging: yields each answer's `data`; the connection at `connection`
    (a path of field names under `data`) gives `pageInfo {hasNextPage endCursor}`, sent back
    as the variable `cursor`. GraphQL reports errors in a 200 answer's `errors`. With
    `on_partial`, errors that each name the `path` of a field that failed while the rest of
    the page answered go to it (before the page is yielded) instead of failing the listing."""
    guard = _Guard(operation, max_pages)
    sent = dict(variables)
    while True:
        answer = client.post_json(path, operation=operation,
                                  body={"query": query, "variables": sent})
        if not isinstance(answer, dict):
            raise MalformedResponse(operation, "the GraphQL answer is not an object")
        data = answer.get("data")
        node: Any = data
        for name in connection:
            node = node.get(name) if isinstance(node, dict) else None
        errors = answer.get("errors")
        if (on_partial is not None and errors and isinstance(errors, list)
                and isinstance(node, dict)
                and all(isinstance(e, dict) and e.get("path") for e in errors)):
            on_partial(errors)
        elif errors:
            first = errors[0] if isinstance(errors, list) and errors else {}
            message = first.get("message", "") if isinstance(first, dict) else str(first)
            kind = first.get("type", "GraphQLError") if isinstance(first, dict) else "GraphQLError"
            raise HttpError(operation, 200, str(kind), str(message))
        if not isinstance(data, dict) or not isinstance(node, dict):
            raise MalformedResponse(operation, f"no {'.'.join(connection)} in the answer")
        yield data
        info = node.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return
        sent[cursor] = guard.next(info.get("endCursor"))
        if sent[cursor] is None:
            raise MalformedResponse(operation, "hasNextPage without an endCursor")
