"""The auditor API's defences on a real uvicorn server: the security headers of every answer,
and refused tokens slowing their client down (429 with Retry-After, per client address, with
bounded memory)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa

from collector import tokens
from collector.api import ApiServer, create_app
from collector.api.bad_tokens import BadTokenLimiter, client_of
from collector.api.headers import API_CSP, PAGE_CSP
from collector.web.rendering import stamp
from tests.helpers import annexa
from tests.manual_support import manual_config, service_api, upgraded
from tests.web_support import Seeded, seeded_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_service(tmp_path_factory.mktemp("defences")) as seeded:
        yield seeded


def _from(address: str, token: str | None = None) -> dict[str, str]:
    """Headers of a request that the (trusted, loopback) reverse proxy forwarded for
    `address`: uvicorn takes X-Forwarded-For from 127.0.0.1, as behind a TLS proxy."""
    headers = {"X-Forwarded-For": address}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def test_every_kind_of_answer_carries_the_security_headers(service: Seeded) -> None:
    auditor, _ = tokens.create(service.engine, role="auditor", name="headers")
    with service.engine.connect() as conn:
        digest = conn.scalar(sa.text("SELECT digest FROM resource_versions LIMIT 1"))
    at = stamp(service.second_finished)
    answers = {
        "json": requests.get(f"{service.url}/controls", headers=_from("10.1.0.1", auditor),
                             timeout=60),
        "evidence": requests.get(f"{service.url}/evidence/{digest}",
                                 headers=_from("10.1.0.1", auditor), timeout=60),
        "401": requests.get(f"{service.url}/runs", headers=_from("10.1.0.1"), timeout=60),
        "404": requests.get(f"{service.url}/no-such-route", timeout=60),
        "405": requests.delete(f"{service.url}/runs", timeout=60),
        "422": requests.get(f"{service.url}/controls", params={"at": "soon"},
                            headers=_from("10.1.0.1", auditor), timeout=60),
        "openapi": requests.get(f"{service.url}/openapi.json", timeout=60),
        "ndjson": requests.get(f"{service.url}/exports/ocsf", params={
            "from": stamp(service.first_finished), "to": at},
            headers=_from("10.1.0.1", auditor), timeout=60),
        "zip": requests.get(f"{service.url}/exports/bundle", params={
            "from": stamp(service.first_finished), "to": at},
            headers=_from("10.1.0.1", auditor), timeout=60),
        "page": requests.get(f"{service.url}/", params={"at": at},
                             cookies={"annexa_session": auditor}, timeout=60),
        "login": requests.get(f"{service.url}/login", timeout=60),
        "redirect": requests.get(f"{service.url}/", cookies={"annexa_session": auditor},
                                 allow_redirects=False, timeout=60),
        "static": requests.get(f"{service.url}/static/verify.js", timeout=60),
    }
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {"json": 200, "evidence": 200, "401": 401, "404": 404, "405": 405,
                        "422": 422, "openapi": 200, "ndjson": 200, "zip": 200, "page": 200,
                        "login": 200, "redirect": 303, "static": 200}
    for name, answer in answers.items():
        headers = answer.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["cache-control"] == "no-store", name
        html = headers.get("content-type", "").startswith("text/html")
        assert headers["content-security-policy"] == (PAGE_CSP if html else API_CSP), name
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        # Pages keep their forms' Origin header (session.same_origin checks it); the rest
        # tells nobody where it was read.
        assert headers["referrer-policy"] == ("same-origin" if html else "no-referrer"), name
    assert {name for name, a in answers.items()
            if a.headers.get("content-type", "").startswith("text/html")} == {"page", "login"}


def test_even_an_unexpected_error_carries_them(service: Seeded) -> None:
    app = create_app(service.engine, timedelta(days=1), service.signer.public_hex)

    @app.get("/broken")  # a route with a bug, as a future one might have
    def broken() -> None:
        raise RuntimeError("a bug")

    server = ApiServer(app, "127.0.0.1", 0)
    server.start()
    try:
        answer = requests.get(f"{server.url}/broken", timeout=60)
    finally:
        server.stop()
    assert answer.status_code == 500
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["content-security-policy"] == API_CSP
    assert answer.headers["cache-control"] == "no-store"


def test_refused_tokens_slow_down_only_their_own_client(service: Seeded) -> None:
    good, _ = tokens.create(service.engine, role="auditor", name="slowed")
    guesser, other = "10.2.0.1", "10.2.0.2"
    refusals = [requests.get(f"{service.url}/controls", timeout=60,
                             headers=_from(guesser, f"annexa_guess{i}")) for i in range(10)]
    assert [r.status_code for r in refusals] == [401] * 10
    assert all(r.json()["detail"] == "unknown token" for r in refusals)
    blocked = requests.get(f"{service.url}/controls", headers=_from(guesser, "annexa_guess10"),
                           timeout=60)
    assert blocked.status_code == 429, blocked.text
    assert 1 <= int(blocked.headers["retry-after"]) <= 300
    assert blocked.json()["detail"].startswith(f"too many refused tokens from {guesser}: try "
                                               "again in ")
    assert blocked.headers["x-content-type-options"] == "nosniff"
    # A blocked address is not told whether a token is good: even a valid one waits, on the
    # API and on the page's sign-in form alike.
    assert requests.get(f"{service.url}/controls", headers=_from(guesser, good),
                        timeout=60).status_code == 429
    assert requests.post(f"{service.url}/login", data={"token": good}, headers=_from(guesser),
                         allow_redirects=False, timeout=60).status_code == 429
    # Another client is not slowed by the guesser, and a request without a token is not a
    # refused token.
    for _ in range(12):
        assert requests.get(f"{service.url}/controls", headers=_from(other),
                            timeout=60).status_code == 401
    assert requests.get(f"{service.url}/controls", headers=_from(other, good),
                        timeout=60).status_code == 200
    with service.engine.connect() as conn:
        logged = conn.execute(sa.text(
            "SELECT client, status FROM api_access_log WHERE client = :c ORDER BY id"),
            {"c": guesser}).all()
    assert [row.status for row in logged] == [401] * 10 + [429] * 3, "every answer is logged"


def test_annexa_run_takes_the_limit_from_the_configuration(tmp_path, capsys) -> None:
    config = upgraded(capsys, manual_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}", api={
        "host": "127.0.0.1", "port": 0, "bad_token_limit": 2, "bad_token_window": "1h"}))
    with service_api(config) as url:
        answers = [requests.get(f"{url}/controls", headers={"Authorization": f"Bearer x{i}"},
                                timeout=60) for i in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert 3500 < int(answers[2].headers["retry-after"]) <= 3600
    bad = manual_config(tmp_path, "sqlite://", api={"bad_token_window": "0s"})
    code, _, err = annexa(capsys, bad, "controls")
    assert code == 2 and "annexa.yaml: api.bad_token_window: '0s' is shorter than 1s" in err, err


def test_the_sign_in_form_counts_refused_tokens(service: Seeded) -> None:
    address = "10.3.0.1"
    answers = [requests.post(f"{service.url}/login", data={"token": f"annexa_form{i}"},
                             headers=_from(address), allow_redirects=False, timeout=60)
               for i in range(10)]
    assert [a.status_code for a in answers] == [401] * 10
    assert requests.post(f"{service.url}/login", data={"token": ""}, headers=_from("10.3.0.2"),
                         allow_redirects=False, timeout=60).status_code == 401
    assert requests.get(f"{service.url}/login", headers=_from(address),
                        timeout=60).status_code == 429


def test_a_caller_without_a_token_cannot_make_the_server_hold_a_large_body(
        service: Seeded) -> None:
    big = b"{" + b" " * 2**20 + b"}"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(32):
            yield b" " * 65536

    declared = requests.post(f"{service.url}/attestations", data=big, timeout=60,
                             headers={**_from("10.4.0.1"), "Content-Type": "application/json"})
    streamed = requests.post(f"{service.url}/attestations", data=chunks(), timeout=60,
                             headers={**_from("10.4.0.1"), "Content-Type": "application/json"})
    sign_in = requests.post(f"{service.url}/login", data={"token": "x" * 100_000},
                            headers=_from("10.4.0.2"), allow_redirects=False, timeout=60)
    assert [declared.status_code, streamed.status_code, sign_in.status_code] == [413] * 3
    assert declared.headers["x-content-type-options"] == "nosniff"
    small = requests.post(f"{service.url}/attestations", json={"control": "A.5.1"},
                          headers=_from("10.4.0.3"), timeout=60)
    assert small.status_code == 401, "a small body gets the route's own answer"


def test_an_ipv6_guesser_is_one_client_per_64(service: Seeded) -> None:
    for i in range(1, 11):
        assert requests.get(f"{service.url}/runs", timeout=60, headers=_from(
            f"2001:db8:5:5::{i:x}", f"annexa_guess{i}")).status_code == 401
    assert requests.get(f"{service.url}/runs", headers=_from("2001:db8:5:5:ffff::1"),
                        timeout=60).status_code == 429
    assert requests.get(f"{service.url}/runs", headers=_from("2001:db8:5:6::1"),
                        timeout=60).status_code == 401, "the next /64 is another client"
    assert client_of("::ffff:10.5.0.1") == "10.5.0.1" and client_of("10.5.0.1") == "10.5.0.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_refusal_leaves_the_window_and_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = BadTokenLimiter(3, timedelta(seconds=60), max_clients=100, clock=clock)
    for _ in range(3):
        assert limiter.blocked("a") is None
        limiter.refused("a")
        clock.now += 10
    blocked = limiter.blocked("a")
    assert blocked is not None and blocked.retry_after == 30, "the first refusal ages out at 60"
    clock.now += 29.5
    assert limiter.blocked("a") is not None
    clock.now += 0.5
    assert limiter.blocked("a") is None, "two refusals are left in the window"
    for i in range(1000):
        limiter.refused(f"10.9.{i // 256}.{i % 256}")
        limiter.refused("a")
    assert limiter.clients() == 100, "the least recently refused addresses are forgotten"
    assert limiter.blocked("a") is not None, "the most recent stays"
    clock.now += 61
    assert limiter.blocked("a") is None
    assert limiter.clients() == 99, "an address whose refusals all left is dropped"
    with pytest.raises(ValueError, match="must be positive"):
        BadTokenLimiter(0)
