"""Every route of the app (API and web page) against every kind of caller, on a real uvicorn
server: no token, a bad token, an expired and a revoked one, an owner, an auditor, and an
auditor whose token has a window (asked inside it, and outside). The table below must name
every route that `create_app` serves, so a new route without an entry fails this test."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from starlette.routing import Mount, Route

from collector import tokens
from collector.api import create_app
from collector.web.rendering import stamp
from tests.api_support import expire
from tests.web_support import Seeded, seeded_service

ROLES = ("none", "bad", "expired", "revoked", "owner", "auditor", "windowed", "outside")
READER = {"none": 401, "bad": 401, "expired": 401, "revoked": 401, "owner": 403,
          "auditor": 200, "windowed": 200, "outside": 403}
PUBLIC = dict.fromkeys(ROLES, 200)


@dataclass(frozen=True)
class Call:
    """One request of a route; `outside` replaces fields for the windowed token asked
    outside its window (its instant or range, or evidence that only a later run held)."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    via: str = "bearer"  # how the token travels: bearer, cookie (the page) or form (sign-in)
    form: dict[str, str] | None = None
    json: dict[str, Any] | None = None
    outside: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class World:
    seeded: Seeded
    tokens: dict[str, str | None]
    before: str  # an hour before run 1 was sealed
    inside: str  # an instant inside the window (run 1 is sealed, run 2 not yet begun)
    after: str  # an instant after the window (run 2 sealed)
    run1: int
    run2: int
    version1: int  # bucket "logs" as run 1 saw it
    digest1: str
    digest2: str  # bucket "logs" as run 2 saw it: only after the window


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with seeded_service(tmp_path_factory.mktemp("routes")) as seeded:
        engine = seeded.engine
        made = {
            "auditor": tokens.create(engine, role="auditor", name="t-auditor")[0],
            "windowed": tokens.create(engine, role="auditor", name="t-windowed",
                                      window_end=seeded.first_finished)[0],
            "owner": tokens.create(engine, role="owner", name="t-owner",
                                   controls=["A.5.1"])[0],
            "expired": tokens.create(engine, role="auditor", name="t-expired",
                                     expires_at=datetime.now(UTC) + timedelta(days=1))[0],
            "revoked": tokens.create(engine, role="auditor", name="t-revoked")[0],
        }
        expire(engine.url.render_as_string(hide_password=False), "t-expired",
               datetime(2020, 1, 1, tzinfo=UTC))
        assert tokens.revoke(engine, "t-revoked") == 1
        with engine.connect() as conn:
            runs = list(conn.scalars(sa.text("SELECT id FROM runs ORDER BY id")))
            versions = conn.execute(sa.text(
                "SELECT id, digest FROM resource_versions WHERE key = 'arn:aws:s3:::logs' "
                "ORDER BY id")).all()
        yield World(seeded, {**made, "outside": made["windowed"], "none": None,
                             "bad": "annexa_not-a-token"},
                    stamp(seeded.first_finished - timedelta(hours=1)),
                    stamp(seeded.first_finished), stamp(seeded.second_finished),
                    runs[0], runs[1], versions[0].id, versions[0].digest, versions[1].digest)


def table(w: World) -> dict[tuple[str, str], tuple[Call, dict[str, int]]]:
    at, late = {"at": w.inside}, {"at": w.after}
    span = {"from": w.before, "to": w.inside}
    beyond = {"params": {"from": w.after, "to": w.after}}
    page = {"via": "cookie", "outside": {"params": late}}
    statement = {"control": "A.5.1", "statement": "policies approved",
                 "owner": "kim@example.com"}
    owner_only = {**READER, "owner": 201, "auditor": 403, "windowed": 403, "outside": 403}
    web_owner = {**owner_only, "owner": 303}
    sign_in = {"none": 401, "bad": 401, "expired": 401, "revoked": 401, "owner": 303,
               "auditor": 303, "windowed": 303, "outside": 303}
    return {
        ("GET", "/controls"): (Call("GET", "/controls", at, outside={"params": late}), READER),
        ("GET", "/snapshot"): (Call("GET", "/snapshot", at, outside={"params": late}), READER),
        ("GET", "/results"): (Call("GET", "/results", at, outside={"params": late}), READER),
        ("GET", "/evidence/{digest}"): (
            Call("GET", f"/evidence/{w.digest1}", outside={"path": f"/evidence/{w.digest2}"}),
            {**READER, "outside": 404}),
        ("GET", "/runs"): (Call("GET", "/runs", span, outside=beyond), READER),
        ("GET", "/exports/bundle"): (Call("GET", "/exports/bundle", span, outside=beyond),
                                     READER),
        ("GET", "/exports/oscal"): (Call("GET", "/exports/oscal", span, outside=beyond), READER),
        ("GET", "/exports/ocsf"): (Call("GET", "/exports/ocsf", span, outside=beyond), READER),
        ("POST", "/attestations"): (Call("POST", "/attestations", json=statement), owner_only),
        ("GET", "/openapi.json"): (Call("GET", "/openapi.json"), PUBLIC),
        ("GET", "/static"): (Call("GET", "/static/verify.js"), PUBLIC),
        ("GET", "/login"): (Call("GET", "/login", via="cookie"), PUBLIC),
        ("POST", "/login"): (Call("POST", "/login", via="form", form={"next": "/"}), sign_in),
        ("POST", "/logout"): (Call("POST", "/logout", via="cookie"), dict.fromkeys(ROLES, 303)),
        ("GET", "/"): (Call("GET", "/", at, **page), READER),
        ("GET", "/control/{control_id}"): (Call("GET", "/control/A.8.24", at, **page), READER),
        ("GET", "/resource"): (Call("GET", "/resource", {
            **at, "source": "aws-prod", "key": "arn:aws:s3:::logs"}, via="cookie", outside={
            "params": {**late, "source": "aws-prod", "key": "arn:aws:s3:::logs"}}), READER),
        ("GET", "/proof/{version_id}"): (Call("GET", f"/proof/{w.version1}", at, **page),
                                         READER),
        ("GET", "/run/{run_id}"): (Call("GET", f"/run/{w.run1}", at, via="cookie", outside={
            "path": f"/run/{w.run2}", "params": late}), READER),
        ("GET", "/soa"): (Call("GET", "/soa", at, **page), READER),
        ("GET", "/due"): (Call("GET", "/due", at, **page), {**READER, "owner": 200}),
        ("POST", "/attest"): (Call("POST", "/attest", via="cookie", form=statement), web_owner),
        ("GET", "/downloads"): (Call("GET", "/downloads", span, via="cookie", outside=beyond),
                                READER),
    }


def served_routes(w: World) -> set[tuple[str, str]]:
    app = create_app(w.seeded.engine, timedelta(days=1), w.seeded.signer.public_hex,
                     w.seeded.signer)
    return set(_walk(app.routes, ""))


def _walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            yield "GET", prefix + route.path
        elif isinstance(route, Route):
            yield from ((method, prefix + route.path) for method in route.methods - {"HEAD"})
        elif hasattr(route, "original_router"):  # FastAPI's include_router, resolved lazily
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            raise AssertionError(f"a route of an unknown kind: {route!r}")


_clients = itertools.count(1)


def _csrf(w: World, token: str, client: str) -> str:
    due = requests.get(f"{w.seeded.url}/due", cookies={"annexa_session": token},
                       headers={"X-Forwarded-For": client}, timeout=60)
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', due.text)
    assert found, due.text
    return found.group(1)


def send(w: World, call: Call, role: str) -> requests.Response:
    if role == "outside":
        call = Call(**{**call.__dict__, **call.outside})
    token = w.tokens[role]
    # Each request comes from an address of its own (through the trusted loopback proxy that
    # uvicorn reads X-Forwarded-For from), so the refused tokens of this table do not trip the
    # bad-token limit (tests/test_api_defences.py) and every answer is the route's own.
    n = next(_clients)
    client = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
    headers, cookies, form = {"X-Forwarded-For": client}, {}, dict(call.form or {})
    if token and call.via == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    elif token and call.via == "cookie":
        cookies["annexa_session"] = token
    if call.via == "form":
        form["token"] = token or ""
    if call.path == "/attest" and role == "owner" and token:
        form["csrf"] = _csrf(w, token, client)
    return requests.request(call.method, w.seeded.url + call.path, params=call.params,
                            headers=headers, cookies=cookies, data=form or None,
                            json=call.json, allow_redirects=False, timeout=120)


def test_the_table_names_every_route(world: World) -> None:
    served, listed = served_routes(world), set(table(world))
    assert served - listed == set(), "routes without an entry in this table"
    assert listed - served == set(), "entries for routes that are not served"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_each_role_as_it_must(world: World, role: str) -> None:
    got, wanted = {}, {}
    for route, (call, expected) in table(world).items():
        answer = send(world, call, role)
        got[route], wanted[route] = answer.status_code, expected[role]
        if answer.status_code == 401 and call.via == "bearer":
            assert answer.headers["www-authenticate"] == "Bearer", route
    assert got == wanted
