"""How the Workspace APIs' items become resources: keys `google_workspace:<kind>:<id>`, and
listings streamed page by page, whose failure is a CollectionError for their kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.http import HttpError, MalformedResponse


def key_of(kind: str, item: Any, field: str, operation: str, prefix: str = "") -> str:
    """`google_workspace:<kind>:<id>`, the id without its `prefix`; an item without its id
    cannot be kept as evidence."""
    value = item.get(field) if isinstance(item, dict) else None
    if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
        raise MalformedResponse(operation, f"an item of the answer has no {field}")
    return f"google_workspace:{kind}:{str(value).removeprefix(prefix)}"


def listing(scope: Scope, pages: Iterator[list[Any]], *, kind: str, field: str, service: str,
            operation: str, prefix: str = "") -> Iterator[Resource | CollectionError]:
    """One resource per item of a paged listing; a listing that fails becomes a
    CollectionError for `kind` (its earlier evidence is kept, its checks say `error`)."""
    name = kind.removeprefix("google_workspace.")
    try:
        for page in pages:
            for item in page:
                yield scope.resource(kind, key_of(name, item, field, operation, prefix), item)
    except HttpError as exc:
        yield scope.error(service, ALL_REGIONS, (kind,), str(exc))
