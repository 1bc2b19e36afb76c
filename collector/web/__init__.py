"""The auditor's web page, served at `/` beside the API by the same app (`annexa run`):
server-rendered pages of the evidence as of any instant, and in-page verification."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from collector.ledger import Signer
from collector.web import pages
from collector.web.rendering import HERE, page
from collector.web.session import NeedsLogin, Redirect, Refused


def mount(app: FastAPI, engine: Engine, freshness: timedelta, signer: Signer | None) -> None:
    app.include_router(pages.router(engine, freshness, signer))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(NeedsLogin)
    def _login(request: Request, exc: NeedsLogin) -> HTMLResponse:
        return page("login.html", 401, problem=exc.problem, next=str(request.url.path) + (
            "?" + request.url.query if request.url.query else ""), who=None)

    @app.exception_handler(Refused)
    def _refused(request: Request, exc: Refused) -> HTMLResponse:
        return page("refused.html", exc.status, status=exc.status, problem=exc.problem,
                    who=getattr(request.state, "principal", None))

    @app.exception_handler(Redirect)
    def _redirect(_request: Request, exc: Redirect) -> RedirectResponse:
        return RedirectResponse(exc.target, status_code=303)
