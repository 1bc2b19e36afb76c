"""The shared HTTPS client layer against a loopback HTTPS fake: paging styles, retries that
honour the providers' rate-limit answers, TLS trust, and answers that must not be trusted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request

from collector.demo.emulators import microsoft_login
from collector.demo.emulators.server import FakeApi, ca_file, json_response, page_of
from connectors.http import (
    HttpClient,
    HttpError,
    HttpSettings,
    MalformedResponse,
    RateLimits,
    paging,
)
from connectors.http.auth import CredentialError, TokenCredentialAuth

ITEMS = [{"id": i} for i in range(23)]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi("test", page_size=5) as fake:
        yield fake


NO_LIMITS = RateLimits()


def _client(api: FakeApi, limits: RateLimits = NO_LIMITS, **settings: Any) -> HttpClient:
    options = {"ca_bundle": ca_file(), "backoff": 0.0, "max_attempts": 4, **settings}
    sleeps: list[float] = []
    client = HttpClient(api.url, service="test", settings=HttpSettings(**options),
                        limits=limits, sleep=sleeps.append)
    client.sleeps = sleeps  # type: ignore[attr-defined]
    return client


def _ids(pages: Iterator[list[dict[str, Any]]]) -> list[int]:
    return [item["id"] for page in pages for item in page]


def test_every_paging_style_reads_every_item_across_small_pages(api: FakeApi) -> None:
    @api.route("GET", "/arm")
    def arm(request: Request) -> Any:
        page, token = page_of(ITEMS, request.args.get("token"), api.page_size)
        return {"value": page, **({"nextLink": f"{api.url}/arm?token={token}"} if token else {})}

    @api.route("GET", "/nested")
    def nested(request: Request) -> Any:
        page, token = page_of(ITEMS, request.args.get("after"), api.page_size)
        return {"value": page, "_links": {"next": {"href": f"{api.url}/nested?after={token}"}}
                if token else {}}

    @api.route("GET", "/google")
    def google(request: Request) -> Any:
        page, token = page_of(ITEMS, request.args.get("pageToken"), api.page_size)
        assert request.args["fixed"] == "kept"  # the query is sent again with the token
        return {"items": page, **({"nextPageToken": token} if token else {})}

    @api.route("POST", "/graph")
    def graph(request: Request) -> Any:
        body = request.get_json()
        page, token = page_of(ITEMS, (body.get("options") or {}).get("$skipToken"), 5)
        return {"data": page, **({"$skipToken": token} if token else {})}

    @api.route("GET", "/linked")
    def linked(request: Request) -> Any:
        page, token = page_of(ITEMS, request.args.get("after"), api.page_size)
        headers = {"Link": f'<{api.url}/linked?after={token}>; rel="next", '
                           f'<{api.url}/linked>; rel="first"'} if token else {}
        return json_response(page, headers=headers)

    @api.route("POST", "/graphql")
    def graphql(request: Request) -> Any:
        cursor = request.get_json()["variables"].get("cursor")
        page, token = page_of(ITEMS, cursor, api.page_size)
        return {"data": {"org": {"repos": {
            "nodes": page, "pageInfo": {"hasNextPage": token is not None, "endCursor": token}}}}}

    client = _client(api)
    expected = list(range(23))
    assert _ids(paging.next_link(client, "/arm", operation="arm")) == expected
    assert _ids(paging.next_link(client, "/nested", operation="okta",
                                 link=("_links", "next", "href"))) == expected
    assert _ids(paging.page_token(client, "/google", operation="g", items="items",
                                  params={"fixed": "kept"})) == expected
    assert _ids(paging.skip_token(client, "/graph", operation="rg",
                                  body={"query": "Resources"})) == expected
    assert _ids(paging.link_header(client, "/linked", operation="link")) == expected
    answers = paging.graphql(client, "/graphql", operation="gql", query="q", variables={},
                             connection=("org", "repos"))
    assert [n["id"] for a in answers for n in a["org"]["repos"]["nodes"]] == expected
    assert api.calls == {"arm": 5, "nested": 5, "google": 5, "graph": 5, "linked": 5,
                         "graphql": 5}


def test_throttling_is_retried_as_the_provider_asks(api: FakeApi) -> None:
    answers = iter([
        json_response({"error": {"code": "TooManyRequests"}}, 429, {"Retry-After": "7"}),
        json_response({"error": {"code": "ServerBusy"}}, 503),
        json_response({"errorCode": "E0000047", "errorSummary": "API call exceeded rate "
                       "limit"}, 429, {"X-Rate-Limit-Reset": str(int(time.time()) + 30)}),
        json_response({"error": {"code": 403, "status": "PERMISSION_DENIED", "errors": [
            {"reason": "userRateLimitExceeded"}]}}, 403),
    ])

    @api.route("GET", "/busy")
    def busy(request: Request) -> Any:
        return next(answers, {"ok": True})

    google_403 = RateLimits(reset="X-Rate-Limit-Reset", throttled=lambda r: r.status_code == 403
                            and b"RateLimitExceeded" in r.content)
    client = _client(api, google_403, max_attempts=6, backoff=2.0)
    assert client.get_json("/busy", operation="busy") == {"ok": True}
    waits = client.sleeps  # type: ignore[attr-defined]
    assert waits[0] == 7.0  # Retry-After
    assert 1.0 <= waits[1] <= 4.0  # backoff: 503 without a hint
    assert 25 <= waits[2] <= 30  # the window's reset
    assert 8.0 <= waits[3] <= 16.0  # a throttling 403 is backed off, never taken for a denial
    assert api.calls["busy"] == 5


def test_the_last_call_of_a_window_waits_for_its_reset(api: FakeApi) -> None:
    remaining = iter(["1", "0"])

    @api.route("GET", "/paced")
    def paced(request: Request) -> Any:
        return json_response({}, headers={"X-Rate-Limit-Remaining": next(remaining, "50"),
                                          "X-Rate-Limit-Reset": str(int(time.time()) + 20)})

    client = _client(api, RateLimits(remaining="X-Rate-Limit-Remaining",
                                     reset="X-Rate-Limit-Reset"))
    for _ in range(3):
        client.get_json("/paced", operation="paced")
    sleeps = client.sleeps  # type: ignore[attr-defined]
    assert len(sleeps) == 1 and 15 <= sleeps[0] <= 20, sleeps


def test_a_window_s_reserve_is_kept_for_the_calls_in_flight(api: FakeApi) -> None:
    remaining = iter(["5", "4", "3"])

    @api.route("GET", "/reserved")
    def reserved(request: Request) -> Any:
        return json_response({}, headers={"X-Rate-Limit-Remaining": next(remaining, "50"),
                                          "X-Rate-Limit-Reset": str(int(time.time()) + 20)})

    client = _client(api, RateLimits(remaining="X-Rate-Limit-Remaining",
                                     reset="X-Rate-Limit-Reset", reserve=3))
    for _ in range(4):
        client.get_json("/reserved", operation="reserved")
    sleeps = client.sleeps  # type: ignore[attr-defined]
    # 5 and 4 left go on; at 3, the reserve, the next call waits for the reset.
    assert len(sleeps) == 1 and 15 <= sleeps[0] <= 20, sleeps


def test_refusals_name_the_call_and_the_provider_s_words(api: FakeApi) -> None:
    @api.route("GET", "/denied")
    def denied(request: Request) -> Any:
        return json_response({"error": {"code": "AuthorizationFailed", "message": "The client "
                              "does not have authorization to perform action"}}, 403)

    @api.route("GET", "/down")
    def down(request: Request) -> Any:
        return json_response({"message": "Server Error"}, 500)

    client = _client(api)
    with pytest.raises(HttpError) as denial:
        client.get_json("/denied", operation="storage.list")
    assert denial.value.status == 403 and denial.value.denied
    assert str(denial.value) == ("storage.list: HTTP 403 AuthorizationFailed: The client does "
                                 "not have authorization to perform action")
    assert api.calls["denied"] == 1  # a denial is not retried
    with pytest.raises(HttpError, match=r"down: HTTP 500 : Server Error \(still refused after "
                                        r"4 attempts\)"):
        client.get_json("/down", operation="down")
    assert api.calls["down"] == 4


def test_a_wait_beyond_max_retry_wait_fails_the_call_instead(api: FakeApi) -> None:
    api.route("GET", "/slow")(lambda request: json_response({}, 429, {"Retry-After": "3600"}))
    client = _client(api, max_retry_wait=60)
    with pytest.raises(HttpError, match="asks to wait 3600s, more than max_retry_wait 60s"):
        client.get_json("/slow", operation="slow")
    assert client.sleeps == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "problem"), [
    (b"<html>Gateway</html>", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"value": "\xff\xfe"}', "not JSON"),
    (b'{"value": {"a": 1}}', "'value' of a page is not a list"),
    (b'"a string"', "a page is a str, not an object"),
], ids=["html", "deep", "bad-utf8", "not-a-list", "not-an-object"])
def test_malformed_answers_are_refused_with_the_cause(api: FakeApi, body: bytes,
                                                      problem: str) -> None:
    from werkzeug.wrappers import Response

    api.route("GET", "/bad")(lambda request: Response(body, content_type="application/json"))
    with pytest.raises(MalformedResponse, match=problem):
        list(paging.next_link(_client(api), "/bad", operation="bad"))


def test_answers_that_would_loop_or_leak_credentials_are_refused(api: FakeApi) -> None:
    @api.route("GET", "/loop")
    def loop(request: Request) -> Any:
        return {"value": [1], "nextLink": f"{api.url}/loop?same"}

    @api.route("GET", "/away")
    def away(request: Request) -> Any:
        return {"value": [1], "nextLink": "https://attacker.example/steal"}

    client = _client(api)
    with pytest.raises(MalformedResponse, match="paging repeats a page"):
        list(paging.next_link(client, "/loop", operation="loop"))
    with pytest.raises(MalformedResponse, match=r"leads off .* to https://attacker.example"):
        list(paging.next_link(client, "/away", operation="away"))
    assert api.calls["loop"] == 2 and api.calls["away"] == 1


def test_an_answer_larger_than_the_bound_is_refused(api: FakeApi) -> None:
    api.route("GET", "/huge")(lambda request: {"value": ["x" * 200_000]})
    with pytest.raises(MalformedResponse, match="exceeds max_response_bytes"):
        _client(api, max_response_bytes=65_536).get_json("/huge", operation="huge")


def test_trust_is_the_sources_ca_bundle_even_when_the_environment_names_another(
        api: FakeApi, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trustme

    api.route("GET", "/ok")(lambda request: {"ok": True})
    other = tmp_path / "other-ca.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    assert _client(api).get_json("/ok", operation="ok") == {"ok": True}
    # Without the source's bundle, the environment's (the wrong CA) decides.
    with pytest.raises(HttpError, match=r"ok: no answer TLS: .*certificate verify failed"):
        _client(api, ca_bundle=None).get_json("/ok", operation="ok")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file()))
    assert _client(api, ca_bundle=None).get_json("/ok", operation="ok") == {"ok": True}


def test_a_refused_port_is_retried_then_named(api: FakeApi) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(f"https://127.0.0.1:{port}", service="x",
                        settings=HttpSettings(backoff=0, max_attempts=3), sleep=lambda _: None)
    with pytest.raises(HttpError, match=r"probe: no answer ConnectionError: .*[Rr]efused"):
        client.get_json("/", operation="probe")


def test_an_azure_identity_token_is_sent_renewed_after_a_401_and_a_bad_secret_named(
        api: FakeApi) -> None:
    from azure.identity import ClientSecretCredential

    directory = microsoft_login.Directory()
    directory.register("tenant-1", "app-1", "right")
    microsoft_login.install(api, directory)
    rejected_once = iter([True])

    @api.route("GET", "/subscriptions")
    def subscriptions(request: Request) -> Any:
        problem, grant = directory.tokens.grant(request, "https://management.azure.com")
        if problem or next(rejected_once, False):
            return json_response({"error": {"code": "ExpiredAuthenticationToken",
                                            "message": "The access token expiry UTC time is "
                                                       "earlier than current UTC time."}}, 401)
        return {"value": [{"subscriptionId": "s1", "by": grant["subject"]}]}

    def credential(secret: str) -> ClientSecretCredential:
        return ClientSecretCredential("tenant-1", "app-1", secret, authority=api.url,
                                      disable_instance_discovery=True,
                                      connection_verify=str(ca_file()))

    auth = TokenCredentialAuth(credential("right"), "https://management.azure.com/.default")
    client = HttpClient(api.url, service="arm", auth=auth, settings=HttpSettings(
        ca_bundle=ca_file(), backoff=0), sleep=lambda _: None)
    assert list(paging.next_link(client, "/subscriptions", operation="subscriptions.list")) == [
        [{"subscriptionId": "s1", "by": "app-1"}]]
    assert api.calls["subscriptions"] == 2
    bad = HttpClient(api.url, service="arm", settings=HttpSettings(ca_bundle=ca_file()),
                     auth=TokenCredentialAuth(credential("wrong"),
                                              "https://management.azure.com/.default"))
    with pytest.raises(HttpError, match=r"subscriptions.list: HTTP 401 CredentialUnavailable: "
                                        r".*Invalid client secret"):
        bad.get_json("/subscriptions", operation="subscriptions.list")


def test_google_refusals_are_named_by_status_and_reason_not_a_repeated_code(api: FakeApi) -> None:
    bodies = {
        "/directory": {"error": {"code": 403, "message": "Not Authorized to access this "
                                 "resource/api", "errors": [{"message": "Not Authorized to "
                                 "access this resource/api", "domain": "global",
                                 "reason": "forbidden"}]}},
        "/identity": {"error": {"code": 403, "message": "The caller does not have permission",
                                "status": "PERMISSION_DENIED"}},
    }
    for path, body in bodies.items():
        api.route("GET", path, name=path)(lambda request, body=body: json_response(body, 403))
    client = _client(api)
    with pytest.raises(HttpError) as directory:
        client.get_json("/directory", operation="roles.list")
    assert str(directory.value) == ("roles.list: HTTP 403 (forbidden): Not Authorized to access "
                                    "this resource/api")
    with pytest.raises(HttpError) as identity:
        client.get_json("/identity", operation="policies.list")
    assert str(identity.value) == ("policies.list: HTTP 403 PERMISSION_DENIED: The caller does "
                                   "not have permission")


def test_a_credential_chain_is_asked_for_the_sources_tenant_and_names_why_it_failed(
        api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import DefaultAzureCredential

    directory = microsoft_login.Directory()
    directory.register("tenant-1", "app-1", "right")
    microsoft_login.install(api, directory)
    monkeypatch.setenv("AZURE_TENANT_ID", "tenant-elsewhere")
    monkeypatch.setenv("AZURE_CLIENT_ID", "app-1")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "right")

    def token() -> str:
        chain = DefaultAzureCredential(authority=api.url, disable_instance_discovery=True,
                                       connection_verify=str(ca_file()),
                                       additionally_allowed_tenants=["tenant-1"])
        headers: dict[str, str] = {}
        TokenCredentialAuth(chain, "https://management.azure.com/.default",
                            tenant_id="tenant-1").apply(headers)
        return headers["Authorization"]

    # AZURE_TENANT_ID names a tenant the token service does not know: the source's decides.
    assert token().startswith("Bearer fake.")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    with pytest.raises(CredentialError) as refused:
        token()
    # The chain's own first line only says that it failed; the cause is kept instead.
    assert str(refused.value) == ("ClientAuthenticationError: EnvironmentCredential: "
                                  "Authentication failed: AADSTS7000215: Invalid client secret "
                                  "provided.")


def test_a_truncated_resource_graph_result_that_cannot_be_paged_is_refused(api: FakeApi) -> None:
    @api.route("POST", "/providers/Microsoft.ResourceGraph/resources")
    def truncated(request: Request) -> Any:
        return {"totalRecords": 1500, "count": 1000, "resultTruncated": "true",
                "data": [{"name": i} for i in range(1000)]}

    pages = paging.skip_token(_client(api), "/providers/Microsoft.ResourceGraph/resources",
                              operation="Resources.query", body={"query": "Resources"})
    assert len(next(pages)) == 1000
    with pytest.raises(MalformedResponse, match="truncated and cannot be paged"):
        next(pages)


def _rate_limited(response: Any) -> bool:
    return b'"RATE_LIMITED"' in response.content


def test_a_success_that_the_provider_hook_calls_throttled_is_retried_then_named(
        api: FakeApi) -> None:
    limited = {"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}
    window = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + 40)}
    answers = iter([json_response(limited, headers=window), json_response(limited)])

    @api.route("POST", "/graphql")
    def graphql(request: Request) -> Any:
        return next(answers, {"data": {"viewer": {"login": "annexa"}}})

    limits = RateLimits(remaining="X-RateLimit-Remaining", reset="X-RateLimit-Reset",
                        throttled=_rate_limited, min_wait=3.0)
    client = _client(api, limits, backoff=1.0)
    assert client.post_json("/graphql", operation="gql", body={"query": "q"}) == {
        "data": {"viewer": {"login": "annexa"}}}
    waits = client.sleeps  # type: ignore[attr-defined]
    assert 35 <= waits[0] <= 40 and waits[1] >= 3.0, waits  # the reset, then min_wait
    assert api.calls["graphql"] == 3

    answers = iter([json_response(limited)] * 4)
    with pytest.raises(HttpError) as refused:
        client.post_json("/graphql", operation="gql", body={"query": "q"})
    assert refused.value.status == 200 and refused.value.code == "RATE_LIMITED"
    assert "API rate limit exceeded (still refused after 4 attempts)" in str(refused.value)


def test_graphql_fields_that_failed_go_to_on_partial_and_other_errors_fail(api: FakeApi) -> None:
    answers = iter([
        {"data": {"org": {"repos": {"nodes": [{"id": 1, "rule": None}],
                                    "pageInfo": {"hasNextPage": False, "endCursor": None}}}},
         "errors": [{"type": "FORBIDDEN", "path": ["org", "repos", "nodes", 0, "rule"],
                     "message": "Resource not accessible by integration"}]},
        {"data": None, "errors": [{"type": "NOT_FOUND", "message": "no org"}]},
    ])

    @api.route("POST", "/graphql")
    def graphql(request: Request) -> Any:
        return next(answers)

    partial: list[dict[str, Any]] = []
    pages = paging.graphql(_client(api), "/graphql", operation="gql", query="q", variables={},
                           connection=("org", "repos"), on_partial=partial.extend)
    assert [n["id"] for p in pages for n in p["org"]["repos"]["nodes"]] == [1]
    assert [e["type"] for e in partial] == ["FORBIDDEN"]
    with pytest.raises(HttpError, match="NOT_FOUND: no org"):
        list(paging.graphql(_client(api), "/graphql", operation="gql", query="q",
                            variables={}, connection=("org", "repos"), on_partial=partial.extend))
