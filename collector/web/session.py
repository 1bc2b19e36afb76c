"""Who looks at the page: the API's bearer token, entered once and then held in an HttpOnly,
SameSite=Strict session cookie (collector/api/access.py reads it, so every page view is logged
under the token like an API call); the instant of the page and the token's window; CSRF
tokens for the forms that write."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import RedirectResponse

from collector.api.access import SESSION_COOKIE
from collector.tokens import Principal
from collector.web.rendering import link


class NeedsLogin(Exception):
    """No valid token: the login page answers, with the reason."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class Refused(Exception):
    """A page that cannot be shown (403 outside the window, 400 for a bad instant, ...)."""

    def __init__(self, status: int, problem: str) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem


class Redirect(Exception):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def viewer(request: Request, roles: tuple[str, ...] = ("auditor",)) -> Principal:
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:
        raise NeedsLogin(getattr(request.state, "auth_problem", None) or "enter your token")
    if who.role not in roles:
        raise Refused(403, f"a token of role {who.role!r} may not see this page")
    return who


def instant_of(request: Request, who: Principal) -> datetime:
    """The page's `?at=`. Missing, it redirects to the same page at the current instant (so
    every page showing a state can be cited by its URL); outside the window it is refused,
    never moved into it."""
    from collector.api.app import _rfc3339, instant  # the API's own rules for instants

    picked = request.query_params.get("pick")
    raw = request.query_params.get("at")
    if picked:  # the date-time picker sends a local-format value, which the page reads as UTC
        raw = picked if picked.upper().endswith("Z") else picked + (
            "Z" if picked.count(":") == 2 else ":00Z")
    if raw is None or picked:
        try:
            when = instant(who, None if raw is None else _rfc3339(raw))
        except ValueError as exc:
            raise Refused(400, f"at: {exc}") from None
        except HTTPException as exc:
            raise Refused(exc.status_code, str(exc.detail)) from None
        params = {k: v for k, v in request.query_params.items() if k not in ("at", "pick")}
        raise Redirect(link(request.url.path, when, **params))
    try:
        return instant(who, _rfc3339(raw))
    except ValueError as exc:
        raise Refused(400, f"at: {exc}") from None
    except HTTPException as exc:
        raise Refused(exc.status_code, str(exc.detail)) from None


class Csrf:
    """A form token bound to the session's token: a page of another origin cannot read it,
    so it cannot post a form that carries it."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, who: Principal) -> str:
        return hmac.new(self._key, f"annexa-web:{who.token_id}".encode(),
                        hashlib.sha256).hexdigest()

    def check(self, request: Request, who: Principal, sent: str | None) -> None:
        same_origin(request)
        if not sent or not hmac.compare_digest(sent, self.token(who)):
            raise Refused(403, "the form's CSRF token is missing or wrong: reload the page")


def same_origin(request: Request) -> None:
    """Refuse a form that a page of another origin posted (browsers send its Origin)."""
    origin = request.headers.get("origin")
    if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Refused(403, f"a form posted from {origin} is refused")


async def form(request: Request, limit: int = 1 << 20) -> dict[str, str]:
    body = await request.body()
    if len(body) > limit:
        raise Refused(413, "the form is too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


def safe_next(target: str | None) -> str:
    """Only a path of this site: a login link must not send the auditor elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return parts.path + ("?" + parts.query if parts.query else "")


def signed_in(request: Request, token: str, target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


def signed_out() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
