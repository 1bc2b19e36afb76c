"""The Okta management API v1 as the okta connector calls it: the real paths, `limit`/`after`
paging with `Link: <...>; rel="next"` (and `_links.next.href` for the IAM API), Okta's error
bodies (E0000011 for a token it does not know, E0000006 for a call the token may not make,
E0000047 for a rate limit), and its rate limits: every answer names `X-Rate-Limit-Limit`,
`-Remaining` and `-Reset` (epoch seconds) of its bucket, and a call beyond the window's limit
gets a 429.

Calls carry `Authorization: SSWS <token>` (an API token the org issued) or `Bearer <token>`
from the org authorization server's `/oauth2/v1/token`, which takes a service app's client
assertion (private_key_jwt) and issues tokens of the scopes the app was granted.

As Okta does, `/api/v1/users` leaves deprovisioned users out unless `filter` asks for a
status. Pages are at most `api.page_size` long. `start_demo()` seeds a sample org with planted
gaps beside well-configured twins (okta_seed)."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from werkzeug.wrappers import Request, Response

from collector.demo.emulators import DemoSource
from collector.demo.emulators.server import FakeApi, Tokens, ca_file, json_response, page_of

DEMO_TOKEN = "00annexa-demo-ssws-token"
TOKEN_ENV = "OKTA_API_TOKEN"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
USERS = "okta.users.read"
ROLES = "okta.roles.read"
POLICIES = "okta.policies.read"
AUTHENTICATORS = "okta.authenticators.read"
APPS = "okta.apps.read"
API_TOKENS = "okta.apiTokens.read"
ZONES = "okta.networkZones.read"
_STATUS_FILTER = 'status eq "'


def okta_error(status: int, code: str, summary: str,
               headers: dict[str, str] | None = None) -> Response:
    return json_response({"errorCode": code, "errorSummary": summary, "errorLink": code,
                          "errorId": "oae" + secrets.token_urlsafe(16), "errorCauses": []},
                         status, headers)


def origin(request: Request) -> str:
    """The org's address as the client called it: Okta writes its links with the org's own
    domain, whatever stands between (a proxy in front of the fake changes the port)."""
    return request.host_url.rstrip("/")


def invalid_token(_request: Request | None = None) -> Response:
    return okta_error(401, "E0000011", "Invalid token provided")


def forbidden(_request: Request | None = None) -> Response:
    return okta_error(403, "E0000006",
                      "You do not have permission to perform the requested action")


def rate_limited(limit: int = 600, window: float = 1.0) -> Callable[[Request], Response]:
    """Okta's 429, its headers saying when the window resets: an answer for throttle storms."""
    def answer(_request: Request) -> Response:
        return okta_error(429, "E0000047", "API call exceeded rate limit due to too many "
                          "requests.", _window_headers(limit, 0, window))
    return answer


def _window_headers(limit: int, remaining: int, window: float) -> dict[str, str]:
    reset = math.floor(time.time() / window) * window + window
    return {"X-Rate-Limit-Limit": str(limit), "X-Rate-Limit-Remaining": str(max(remaining, 0)),
            "X-Rate-Limit-Reset": str(math.ceil(reset))}


@dataclass
class ServiceApp:
    """An OAuth 2.0 service app: its public key (PEM) and the scopes granted to it."""

    public_key: bytes
    scopes: set[str]
    dpop: bool = False


@dataclass
class Org:
    """An org's state as its API serves it. `factors` and `roles` are by user id; `rules` by
    policy id; `policies` by type."""

    id: str
    users: list[dict[str, Any]] = field(default_factory=list)
    factors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    authenticators: list[dict[str, Any]] = field(default_factory=list)
    apps: list[dict[str, Any]] = field(default_factory=list)
    api_tokens: list[dict[str, Any]] = field(default_factory=list)
    zones: list[dict[str, Any]] = field(default_factory=list)
    # SSWS tokens the org accepts; revoking one takes it out.
    secrets: set[str] = field(default_factory=lambda: {DEMO_TOKEN})
    service_apps: dict[str, ServiceApp] = field(default_factory=dict)
    # Calls per bucket in each window of `window` seconds (Okta's are a minute).
    rate_limit: int = 600
    window: float = 60.0


class Limiter:
    """Okta's rate-limit buckets: calls counted per bucket per window."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def take(self, bucket: str, limit: int, window: float) -> tuple[bool, dict[str, str]]:
        with self._lock:
            start = math.floor(time.time() / window) * window
            began, count = self._counts.get(bucket, (start, 0))
            count = count + 1 if began == start else 1
            self._counts[bucket] = (start, count)
            allowed = count <= limit
            if not allowed:
                self.refused += 1
        return allowed, _window_headers(limit, limit - count, window)

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self.refused = 0


def install(api: FakeApi, org: Org, tokens: Tokens) -> Limiter:
    """The org's routes on `api`; bearer tokens come from `tokens`, issued by its own token
    endpoint for the fake's URL."""
    limiter = Limiter()
    used_assertions: set[str] = set()

    def admitted(request: Request, scope: str) -> Response | None:
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        if scheme == "SSWS":
            return None if credential in org.secrets else invalid_token()
        if scheme == "Bearer":
            problem, grant = tokens.grant(request, api.url)
            if problem:
                return okta_error(401, "E0000011", "Invalid token provided", {
                    "WWW-Authenticate": 'Bearer error="invalid_token", '
                                        'error_description="The token is not valid."'})
            if scope not in grant["scopes"]:
                return okta_error(403, "E0000006", "You do not have permission to perform "
                                  "the requested action", {
                                      "WWW-Authenticate": 'Bearer error="insufficient_scope", '
                                                          'error_description="The access '
                                                          'token provided does not contain '
                                                          'the required scopes."'})
            return None
        return okta_error(401, "E0000005", "Invalid session")

    def route(pattern: str, name: str, scope: str) -> Callable[[Callable[..., Any]], None]:
        """A GET route behind authentication and its bucket's rate limit; every answer
        carries the bucket's rate-limit headers."""
        def register(handler: Callable[..., Any]) -> None:
            @api.route("GET", pattern, name=name)
            def answer(request: Request, **groups: str) -> Response:
                refused = admitted(request, scope)
                if refused is not None:
                    return refused
                allowed, headers = limiter.take(name, org.rate_limit, org.window)
                if not allowed:
                    return okta_error(429, "E0000047", "API call exceeded rate limit due to "
                                      "too many requests.", headers)
                result = handler(request, **groups)
                response = result if isinstance(result, Response) else json_response(result)
                response.headers.update(headers)
                return response
        return register

    def linked(request: Request, items: list[dict[str, Any]], default: int,
               largest: int) -> Response:
        """A page of `items` from `after`, `limit` long (at most `largest`, and the fake's
        page size), with the Link header of this page and the next."""
        try:
            limit = int(request.args.get("limit", default))
        except ValueError:
            return okta_error(400, "E0000001", "Api validation failed: limit")
        if limit < 1:
            return okta_error(400, "E0000001", "Api validation failed: limit")
        try:
            page, after = page_of(items, request.args.get("after"),
                                  min(limit, largest, api.page_size))
        except ValueError:
            return okta_error(400, "E0000001", "Api validation failed: after")
        query = {k: v for k, v in request.args.items() if k != "after"}
        base = f"{origin(request)}{request.path}"
        links = [f'<{base}?{urlencode(query)}>; rel="self"' if query else f'<{base}>; rel="self"']
        if after is not None:
            links.append(f'<{base}?{urlencode({**query, "after": after})}>; rel="next"')
        return json_response(page, headers={"Link": ", ".join(links)})

    @api.route("POST", "/oauth2/v1/token", name="oauth2.token")
    def token(request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        if form.get("grant_type") != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "The authorization grant type "
                                "is not supported by the authorization server.")
        if form.get("client_assertion_type") != ASSERTION_TYPE or "client_assertion" not in form:
            return _oauth_error(401, "invalid_client", "Client authentication failed. "
                                "Either the client or the client credentials are invalid.")
        assertion = form["client_assertion"]
        try:
            client_id = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            app = org.service_apps[client_id]
            claims = jwt.decode(assertion, app.public_key, algorithms=["RS256", "ES256"],
                                audience=f"{api.url}/oauth2/v1/token", issuer=client_id,
                                options={"require": ["exp", "iat", "jti", "sub"]})
        except (jwt.PyJWTError, KeyError) as exc:
            return _oauth_error(401, "invalid_client", f"The client_assertion token is "
                                f"invalid: {exc}")
        if claims["sub"] != client_id or claims["jti"] in used_assertions:
            return _oauth_error(401, "invalid_client", "The client_assertion token has "
                                "already been used or its subject is not the client.")
        used_assertions.add(claims["jti"])
        if app.dpop and "DPoP" not in request.headers:
            return _oauth_error(400, "invalid_dpop_proof", "The DPoP proof JWT header is "
                                "missing.")
        wanted = set(form.get("scope", "").split())
        if not wanted or wanted - app.scopes:
            return _oauth_error(400, "invalid_scope", "The following scopes are not allowed: "
                                f"{', '.join(sorted(wanted - app.scopes)) or '(none asked)'}")
        access, lifetime = tokens.issue(api.url, subject=client_id, scopes=wanted)
        return json_response({"token_type": "Bearer", "expires_in": lifetime,
                              "access_token": access, "scope": " ".join(sorted(wanted))})

    @route(r"/api/v1/users", "users", USERS)
    def users(request: Request) -> Response:
        wanted = request.args.get("filter")
        if wanted is None:
            chosen = [u for u in org.users if u["status"] != "DEPROVISIONED"]
        elif wanted.startswith(_STATUS_FILTER) and wanted.endswith('"'):
            status = wanted[len(_STATUS_FILTER):-1]
            chosen = [u for u in org.users if u["status"] == status]
        else:
            return okta_error(400, "E0000031", "Invalid search criteria.")
        return linked(request, chosen, 200, 200)

    @route(r"/api/v1/users/(?P<user_id>[^/]+)/factors", "users.factors", USERS)
    def factors(request: Request, user_id: str) -> Response | list[dict[str, Any]]:
        if not any(u["id"] == user_id for u in org.users):
            return okta_error(404, "E0000007", f"Not found: Resource not found: {user_id} "
                              "(User)")
        return org.factors.get(user_id, [])

    @route(r"/api/v1/users/(?P<user_id>[^/]+)/roles", "users.roles", ROLES)
    def user_roles(request: Request, user_id: str) -> list[dict[str, Any]]:
        return org.roles.get(user_id, [])

    @route(r"/api/v1/iam/assignees/users", "iam.assignees", ROLES)
    def assignees(request: Request) -> Response | dict[str, Any]:
        holders = [uid for uid in org.roles if org.roles[uid]]
        try:
            limit = min(int(request.args.get("limit", 100)), 100, api.page_size)
            page, after = page_of(holders, request.args.get("after"), limit)
        except ValueError:
            return okta_error(400, "E0000001", "Api validation failed: after")
        body: dict[str, Any] = {"value": [{"id": uid, "orgId": org.id, "_links": {"roles": {
            "href": f"{origin(request)}/api/v1/users/{uid}/roles"}}} for uid in page],
            "_links": {}}
        if after is not None:
            body["_links"]["next"] = {"href": f"{origin(request)}/api/v1/iam/assignees/users?"
                                              f"{urlencode({'limit': limit, 'after': after})}"}
        return body

    @route(r"/api/v1/policies", "policies", POLICIES)
    def policies(request: Request) -> Response:
        kind = request.args.get("type")
        if kind not in ("OKTA_SIGN_ON", "PASSWORD", "MFA_ENROLL", "ACCESS_POLICY",
                        "IDP_DISCOVERY", "PROFILE_ENROLLMENT", "POST_AUTH_SESSION",
                        "ENTITY_RISK"):
            return okta_error(400, "E0000001", "Api validation failed: type")
        return linked(request, org.policies.get(kind, []), 20, 200)

    @route(r"/api/v1/policies/(?P<policy_id>[^/]+)/rules", "policies.rules", POLICIES)
    def rules(request: Request, policy_id: str) -> Response:
        if not any(p["id"] == policy_id for group in org.policies.values() for p in group):
            return okta_error(404, "E0000007", f"Not found: Resource not found: {policy_id} "
                              "(Policy)")
        return linked(request, org.rules.get(policy_id, []), 200, 200)

    for path, name, scope, items in (
            ("/api/v1/authenticators", "authenticators", AUTHENTICATORS,
             lambda: org.authenticators),
            ("/api/v1/apps", "apps", APPS, lambda: org.apps),
            ("/api/v1/api-tokens", "api_tokens", API_TOKENS, lambda: org.api_tokens),
            ("/api/v1/zones", "zones", ZONES, lambda: org.zones)):
        def listing(request: Request, items: Callable[[], list[Any]] = items) -> Response:
            return linked(request, items(), 20, 200)
        route(path, name, scope)(listing)
    return limiter


def _oauth_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def start(org: Org, page_size: int = 5) -> tuple[FakeApi, Limiter, Tokens]:
    api = FakeApi("okta", page_size=page_size)
    tokens = Tokens()
    limiter = install(api, org, tokens)
    return api.start(), limiter, tokens


def source_for(api: FakeApi, name: str = "okta-demo") -> dict[str, Any]:
    return {"name": name, "kind": "okta", "org_url": api.url, "token_env": TOKEN_ENV,
            "ca_bundle": str(ca_file())}


def start_demo(workdir: Path) -> DemoSource:
    from collector.demo.emulators.okta_seed import sample_org

    org, planted = sample_org()
    api, _, _ = start(org)
    return DemoSource(source={**source_for(api), "schedule": "15m"},
                      env={TOKEN_ENV: DEMO_TOKEN}, planted=planted, stop=api.stop)


def okta_id(prefix: str, *names: str) -> str:
    """A stable 20-character Okta id for a seeded name (an unchanged seed: equal evidence)."""
    digest = hashlib.sha256(":".join(names).encode()).digest()
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    number = int.from_bytes(digest, "big")
    tail = ""
    while len(tail) < 20 - len(prefix):
        number, digit = divmod(number, len(alphabet))
        tail += alphabet[digit]
    return prefix + tail
