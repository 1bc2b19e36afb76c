"""Schemathesis against the OpenAPI document that the auditor API serves: generated requests
(valid and invalid) to every operation on a real uvicorn server; no 5xx, and every response
conforms to the document (status codes, content types, bodies, authentication)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from collector.api.bad_tokens import BadTokenLimiter
from tests.api_support import api_server, token, two_runs


@pytest.fixture
def served(tmp_path, database_url, moto_url, capsys) -> Iterator[tuple[str, str]]:
    history = two_runs(tmp_path, database_url, moto_url, capsys)
    auditor = token(capsys, history.config, "--name", "schemathesis")
    # Its cases send refused tokens by the hundred from one address: with the default limit
    # the rest would be answered 429 (tests/test_api_defences.py tests that limit).
    with api_server(history.config, BadTokenLimiter(limit=1_000_000)) as url:
        yield url, auditor


@pytest.fixture
def api_schema(served: tuple[str, str]) -> Any:
    url, _ = served
    loaded = schemathesis.openapi.from_url(url + "/openapi.json")
    loaded.hook(map_query)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


def _instant(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def map_query(ctx: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """Two adjustments to generated queries.

    A reversed window is refused by design (400), which the schema cannot express, so it would
    be reported as valid data rejected: put it in order. Invalid values that the HTTP client
    cannot put in a query string as they are (a list for a parameter that is no list, sent
    as nothing or as a bare value; an object; anything but text for a parameter the route does
    not declare) would be dropped or flattened, so the server would never see what the case
    claims to send: send their JSON text instead, which the server must refuse (422)."""
    params = {p.name: json.dumps(p.definition.get("schema", {}))
              for p in (ctx.operation.query if ctx.operation else [])}
    for name, value in list((query or {}).items()):
        if name not in params:
            dropped = not isinstance(value, str)
        else:
            dropped = isinstance(value, dict) or (isinstance(value, list)
                                                  and '"array"' not in params[name])
        if dropped:
            query[name] = json.dumps(value)  # type: ignore[index]
    if query and "from" in query and "to" in query:
        start, end = _instant(query["from"]), _instant(query["to"])
        try:
            reversed_ = start is not None and end is not None and start > end
        except OverflowError:
            reversed_ = False
        if reversed_:
            query["from"], query["to"] = query["to"], query["from"]
    return query


@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_the_api_conforms_to_its_openapi_document(case: Any, served: tuple[str, str]) -> None:
    _, auditor = served
    case.call_and_validate(headers={"Authorization": f"Bearer {auditor}"})
