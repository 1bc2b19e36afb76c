"""A loopback HTTPS server that speaks a provider's API, for the demo and the tests.

Each provider module installs its routes (the real paths, bodies, paging and error shapes) on
a FakeApi. The server itself adds what every provider's tests need: TLS from one local CA
(trustme), small pages, a count of the calls per route, and injected faults: throttling
answers every N calls, or a fixed answer (403, 500, a malformed body) for matching paths."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[..., Any]
Answer = Callable[[Request], Response]

_ca_lock = threading.Lock()
_ca: Any = None
_ca_file: Path | None = None


def local_ca() -> Any:
    """The process's one CA (trustme), which signs every fake's certificate."""
    global _ca
    with _ca_lock:
        if _ca is None:
            try:
                import trustme
            except ImportError:
                raise SystemExit("the HTTPS emulators need trustme: pip install "
                                 "'annexa[demo]'") from None
            _ca = trustme.CA(organization_name="Annexa emulators")
        return _ca


def ca_file() -> Path:
    """The local CA's certificate as a PEM file: the `ca_bundle` of sources that call fakes."""
    global _ca_file
    ca = local_ca()
    with _ca_lock:
        if _ca_file is None:
            with tempfile.NamedTemporaryFile(prefix="annexa-emulator-ca-", suffix=".pem",
                                             delete=False) as handle:
                handle.write(ca.cert_pem.bytes())
            _ca_file = Path(handle.name)
        return _ca_file


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers,
                    content_type="application/json; charset=utf-8")


@dataclass
class Fault:
    """A fixed answer for requests whose path matches `pattern`, `times` times (None: always)."""

    pattern: re.Pattern[str]
    answer: Answer
    method: str | None = None
    times: int | None = None

    def applies(self, request: Request) -> bool:
        if self.method and request.method != self.method:
            return False
        return bool(self.pattern.search(request.full_path.rstrip("?")))


@dataclass
class Throttle:
    """Every `every`-th call (counted across routes whose path matches `pattern`, if given)
    gets `answer` instead of its result."""

    every: int
    answer: Answer
    count: itertools.count = field(default_factory=lambda: itertools.count(1))
    pattern: re.Pattern[str] | None = None


class Tokens:
    """Bearer tokens issued by a fake token service and accepted by the fakes that trust it.
    A token carries its audience, subject and scopes; tests can expire all of them at once."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        self._issued: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def issue(self, audience: str, subject: str = "", scopes: Iterable[str] = (),
              lifetime: int | None = None) -> tuple[str, int]:
        seconds = self.lifetime if lifetime is None else lifetime
        token = "fake." + secrets.token_urlsafe(24)
        with self._lock:
            self._issued[token] = {"audience": audience, "subject": subject,
                                   "scopes": set(scopes), "expires": time.time() + seconds}
        return token, seconds

    def admit(self, token: str, audience: str, subject: str = "", scopes: Iterable[str] = (),
              lifetime: int | None = None) -> None:
        """Accept a token issued elsewhere (a self-signed JWT, say) as if issued here."""
        with self._lock:
            self._issued[token] = {"audience": audience, "subject": subject,
                                   "scopes": set(scopes),
                                   "expires": time.time() + (lifetime or self.lifetime)}

    def expire_all(self) -> None:
        with self._lock:
            for grant in self._issued.values():
                grant["expires"] = 0.0

    def revoke_all(self) -> None:
        with self._lock:
            self._issued.clear()

    def grant(self, request: Request, audience: str | None = None) -> tuple[str, dict[str, Any]]:
        """("", grant) for a valid bearer token of `audience`, else (problem, {}): problem is
        "missing", "invalid", "expired" or "audience"."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "missing", {}
        with self._lock:
            grant = self._issued.get(token)
        if grant is None:
            return "invalid", {}
        if grant["expires"] <= time.time():
            return "expired", {}
        if audience is not None and grant["audience"] != audience:
            return "audience", {}
        return "", grant


class _Quiet(WSGIRequestHandler):
    """No line on stderr per request: the demo's terminal and the tests' output stay readable."""

    def log_request(self, *_: object) -> None:
        pass


class FakeApi:
    """One HTTPS server on 127.0.0.1. Routes are tried in the order installed; a handler
    returns a werkzeug Response, or JSON-able data (status 200)."""

    def __init__(self, name: str, page_size: int = 5) -> None:
        self.name = name
        self.page_size = page_size
        self.calls: Counter[str] = Counter()
        # The query of each route's latest call: what a client asked for ($select, $top...).
        self.queries: dict[str, dict[str, str]] = {}
        self.faults: list[Fault] = []
        self.throttle: Throttle | None = None
        self.data: dict[str, Any] = {}  # a provider's state, kept by its module
        self._routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # Routes and faults

    def route(self, method: str, pattern: str, name: str | None = None
              ) -> Callable[[Handler], Handler]:
        """`pattern` is a regular expression over the path, matched whole; its named groups
        are the handler's keyword arguments."""
        def register(handler: Handler) -> Handler:
            self._routes.append((method, re.compile(pattern), name or handler.__name__, handler))
            return handler
        return register

    def fail(self, pattern: str, answer: Answer | Response, *, method: str | None = None,
             times: int | None = None) -> Fault:
        respond = answer if callable(answer) and not isinstance(answer, Response) else (
            lambda _request, fixed=answer: fixed)
        fault = Fault(re.compile(pattern), respond, method, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def throttle_every(self, every: int, answer: Answer, pattern: str | None = None) -> None:
        """`pattern` spares other routes, such as a token endpoint that answers otherwise."""
        with self._lock:
            self.throttle = Throttle(every, answer,
                                     pattern=re.compile(pattern) if pattern else None)

    def heal(self) -> None:
        """Remove every fault and throttle."""
        with self._lock:
            self.faults.clear()
            self.throttle = None

    @property
    def total_calls(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.queries.clear()

    # Serving

    @property
    def url(self) -> str:
        assert self._server is not None, f"{self.name} is not started"
        return f"https://127.0.0.1:{self._server.server_port}"

    def start(self) -> FakeApi:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        local_ca().issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                   request_handler=_Quiet, ssl_context=context)
        # A short poll interval: stopping waits for the next poll.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeApi:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        for method, pattern, name, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if method != request.method or match is None:
                continue
            with self._lock:
                self.calls[name] += 1
                self.queries[name] = dict(request.args)
                injected = self._injected(request)
            if injected is not None:
                return injected
            result = handler(request, **match.groupdict())
            return result if isinstance(result, Response) else json_response(result)
        with self._lock:
            self.calls["(no route)"] += 1
        return json_response({"error": {"code": "NotFound",
                                        "message": f"no route for {request.method} "
                                                   f"{request.path}"}}, 404)

    def _injected(self, request: Request) -> Response | None:
        for fault in self.faults:
            if fault.applies(request):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault.answer(request)
        throttle = self.throttle
        if throttle is not None and (throttle.pattern is None
                                     or throttle.pattern.search(request.path)) \
                and next(throttle.count) % throttle.every == 0:
            return throttle.answer(request)
        return None


def offset_token(offset: int) -> str:
    """An opaque page token, as providers hand out."""
    return f"p{offset:08x}{secrets.token_hex(2)}"


def token_offset(token: str | None) -> int:
    if not token:
        return 0
    if not re.fullmatch(r"p[0-9a-f]{12}", token):
        raise ValueError(f"unknown page token {token!r}")
    return int(token[1:9], 16)


def page_of(items: list[Any], token: str | None, size: int) -> tuple[list[Any], str | None]:
    """One page of `items` from an offset token, and the token of the next page (or None)."""
    start = token_offset(token)
    end = start + size
    return items[start:end], (offset_token(end) if end < len(items) else None)
