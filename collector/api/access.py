"""ASGI middleware that identifies the caller and logs every request before answering it.

The log entry is written when the response starts, before any byte of it leaves: if the entry
cannot be written, the client gets 503 instead of the data, so nothing is served unlogged.
A client whose tokens were refused too often is answered 429 instead
(collector/api/bad_tokens.py); a route that checks a token itself (the web page's sign-in form)
counts a refusal by setting `request.state.token_refused`. A request without a valid token
may send a body of ANONYMOUS_BODY_BYTES at most (413 beyond): enough for the sign-in form, and
nobody without a token makes the server hold a large upload.
"""

from __future__ import annotations

import json
import logging
from http.cookies import CookieError, SimpleCookie
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collector import access_log, tokens
from collector.api.bad_tokens import BadTokenLimiter, Blocked, client_of
from collector.schema import now

log = logging.getLogger("annexa.api")


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer":
                return None
            return token.strip() or None
    return None


SESSION_COOKIE = "annexa_session"
ANONYMOUS_BODY_BYTES = 64 * 1024


def session_token(scope: Scope) -> str | None:
    """The token the web page keeps in its HttpOnly cookie (collector/web/session.py)."""
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                return None
            morsel = jar.get(SESSION_COOKIE)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string") or b""
    text = path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    return text.replace("\x00", "%00")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, engine: Engine, bad_tokens: BadTokenLimiter) -> None:
        self.app = app
        self.engine = engine
        self.bad_tokens = bad_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        at = now()
        client = scope.get("client")
        address = client_of(client[0]) if client else "unknown"
        presented = bearer_token(scope) or session_token(scope)
        who, problem = None, None
        blocked = self.bad_tokens.blocked(address)
        if blocked is not None:
            problem = blocked.detail()
        else:
            try:
                who = await run_in_threadpool(tokens.identify, self.engine, presented, at)
            except tokens.TokenRefused as exc:
                problem = str(exc)
                if presented:
                    self.bad_tokens.refused(address)
        state = scope.setdefault("state", {})
        state["principal"], state["auth_problem"] = who, problem

        async def write(status: int) -> None:
            entry = access_log.Access(
                at=at, method=scope["method"][:16], target=_target(scope), status=status,
                client=client[0][:100] if client else None,
                token_id=who.token_id if who else None, token_name=who.name if who else None,
                role=who.role if who else None)
            await run_in_threadpool(access_log.record, self.engine, entry)

        started = refused = False

        async def logged_send(message: Message) -> None:
            nonlocal started, refused
            if message["type"] == "http.response.start":
                started = True
                if state.get("token_refused"):
                    self.bad_tokens.refused(address)
                try:
                    await write(message["status"])
                except Exception:
                    log.exception("could not log an API access: refusing to answer it")
                    refused = True
                    await _unavailable(send)
                    return
            if not refused:
                await send(message)

        try:
            if blocked is not None:
                await _too_many(blocked, logged_send)
            elif who is None:
                await RequestBodyLimitMiddleware(self.app, ANONYMOUS_BODY_BYTES)(
                    scope, receive, logged_send)
            else:
                await self.app(scope, receive, logged_send)
        except Exception:
            if not started:
                await write(500)
            raise


async def _too_many(blocked: Blocked, send: Send) -> None:
    data = json.dumps({"detail": blocked.detail()}).encode()
    await send({"type": "http.response.start", "status": 429,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()),
                            (b"retry-after", str(blocked.retry_after).encode())]})
    await send({"type": "http.response.body", "body": data})


async def _unavailable(send: Send) -> None:
    body: dict[str, Any] = {"detail": "the access could not be logged, so it is not served"}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
