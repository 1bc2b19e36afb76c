"""Azure Resource Graph: one query per table selects whole rows by resource type across every
subscription at once (or every subscription below management groups), paged by
`$skipToken`. Nothing is judged in KQL: the rows are the resources as Azure describes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.azure.kinds import Kind
from connectors.http import HttpClient, MalformedResponse, paging

PATH = "/providers/Microsoft.ResourceGraph/resources"
API = {"api-version": "2022-10-01"}
PAGE_ROWS = 1000  # the most Resource Graph returns in one answer


def query(table: str, kinds: Sequence[Kind]) -> str:
    types = ", ".join(f"'{type_}'" for kind in kinds for type_ in kind.types)
    # Paging is stable only in a fixed order, and `id` is the column Resource Graph pages by.
    return f"{table} | where type in~ ({types}) | order by id asc"


def pages(graph: HttpClient, table: str, kinds: Sequence[Kind],
          scope: Mapping[str, Sequence[str]]) -> Iterator[list[Any]]:
    """The rows of `kinds` in `table`, asked against `scope`: `{"subscriptions": [...]}` or
    `{"managementGroups": [...]}`, as the request body names them."""
    body = {**{k: list(v) for k, v in scope.items()}, "query": query(table, kinds),
            "options": {"$top": PAGE_ROWS, "resultFormat": "objectArray"}}
    yield from paged(graph, body, f"{table}.query")


def paged(graph: HttpClient, body: Mapping[str, Any], operation: str) -> Iterator[list[Any]]:
    yield from paging.skip_token(graph, PATH, operation=operation, body=body, params=API)


def row_fields(row: Any, operation: str) -> tuple[str, str, str]:
    """(id, lower-case type, subscription id) of a row, which every Resource Graph row has."""
    if not isinstance(row, dict):
        raise MalformedResponse(operation, f"a row is a {type(row).__name__}, not an object")
    fields = [row.get(name) for name in ("id", "type", "subscriptionId")]
    if not all(isinstance(value, str) and value for value in fields):
        raise MalformedResponse(operation, "a row without id, type or subscriptionId")
    return fields[0], fields[1].lower(), fields[2]
