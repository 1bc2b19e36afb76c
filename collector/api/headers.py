"""The security headers of every answer, API and web page alike, set in this one place.

Evidence is never cached (`no-store`) nor framed; JSON answers get a policy that lets nothing
load or run if a browser renders them anyway. HTML pages get the web page's policy (its own
script and styles only, no inline script) and keep the Origin header on their forms'
POSTs, which `no-referrer` would turn into `null` and collector/web/session.py then refuses.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

COMMON = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
          "Cache-Control": "no-store", "Cross-Origin-Resource-Policy": "same-origin"}
PAGE = {**COMMON, "Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "same-origin"}
API = {**COMMON, "Content-Security-Policy": API_CSP, "Referrer-Policy": "no-referrer"}


def headers_for(content_type: str) -> dict[str, str]:
    return PAGE if content_type.startswith("text/html") else API


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in headers_for(headers.get("content-type", "")).items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadedFastAPI(FastAPI):
    """FastAPI with the headers outside all of its middleware, so that they reach even the 500
    that Starlette's outermost error middleware sends for an unexpected exception."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())
