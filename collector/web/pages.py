"""The pages: posture, a control, a resource, a run, the SoA, attestations due, downloads;
the login and logout forms, the attestation form, and the proof material that the page's own
script verifies (collector/web/static/verify.js)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine

from checks.catalogue import sort_key
from collector import attestations, soa, tokens
from collector.ledger import Signer
from collector.posture import ControlState, control_states
from collector.schema import now
from collector.web import history, proofs
from collector.web.rendering import page
from collector.web.session import (
    Csrf,
    Refused,
    form,
    instant_of,
    safe_next,
    same_origin,
    signed_in,
    signed_out,
    viewer,
)

STATUSES = ("fail", "unknown", "stale", "manual", "pass", "not_applicable")
TIMELINE_POINTS = 12


def router(engine: Engine, freshness: timedelta, signer: Signer | None) -> APIRouter:
    web = APIRouter(include_in_schema=False)
    csrf = Csrf()
    trees = proofs.Trees()

    @web.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str | None = None) -> HTMLResponse:
        return page("login.html", problem=None, next=safe_next(next),
                    who=getattr(request.state, "principal", None))

    @web.post("/login")
    async def login(request: Request) -> Response:
        fields = await form(request, limit=8192)
        target = safe_next(fields.get("next"))
        token = fields.get("token", "").strip()
        try:
            who = tokens.identify(engine, token, now())
        except tokens.TokenRefused as exc:
            if token:  # counted like a refused bearer token (collector/api/access.py)
                request.state.token_refused = True
            return page("login.html", 401, problem=str(exc), next=target, who=None)
        if who.role == "owner" and target == "/":
            target = "/due"  # the one page of an owner: its controls' attestations
        return signed_in(request, token, target)

    @web.post("/logout")
    async def logout(request: Request) -> RedirectResponse:
        same_origin(request)
        return signed_out()

    @web.get("/", response_class=HTMLResponse)
    def posture(request: Request, status: str | None = None, theme: str | None = None,
                source: str | None = None) -> HTMLResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            states = control_states(conn, when, freshness, failures=False)
        return page("posture.html", who=who, at=when, path="/",
                    **posture_view(states, status, theme, source))

    @web.get("/control/{control_id}", response_class=HTMLResponse)
    def control(request: Request, control_id: str) -> HTMLResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            states = control_states(conn, when, freshness, only=[control_id])
            if not states:
                raise Refused(404, f"{control_id!r} is not an Annex A 2022 control")
            timeline = history.control_timeline(conn, who, control_id, when, freshness,
                                                TIMELINE_POINTS)
        return page("control.html", who=who, at=when, control=states[0], timeline=timeline,
                    path=f"/control/{control_id}")

    @web.get("/resource", response_class=HTMLResponse)
    def resource(request: Request, source: str, key: str) -> HTMLResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            versions = history.versions(conn, who, source, key, when)
        if not versions:
            raise Refused(404, f"no version of {key!r} from {source!r} by {when.isoformat()}"
                               + (" within this token's window" if who.windowed else ""))
        return page("resource.html", who=who, at=when, source=source, key=key,
                    versions=versions, path="/resource",
                    extra={"source": source, "key": key})

    @web.get("/proof/{version_id}")
    def proof(request: Request, version_id: int) -> JSONResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            material = proofs.material(conn, who, trees, version_id, when)
        if material is None:
            raise Refused(404, f"no resource version {version_id} by {when.isoformat()}")
        return JSONResponse(material)

    @web.get("/run/{run_id}", response_class=HTMLResponse)
    def run(request: Request, run_id: int) -> HTMLResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            shown = proofs.run_page(conn, who, run_id, when)
        if shown is None:
            raise Refused(404, f"no sealed run {run_id} had finished by {when.isoformat()}"
                               + (" within this token's window" if who.windowed else ""))
        return page("run.html", who=who, at=when, run=shown, path=f"/run/{run_id}")

    @web.get("/soa", response_class=HTMLResponse)
    def statement(request: Request) -> HTMLResponse:
        who = viewer(request)
        when = instant_of(request, who)
        with engine.connect() as conn:
            held = soa.soa_at(conn, when)
        return page("soa.html", who=who, at=when, soa=held, path="/soa",
                    entries=[held.entries[k] for k in sorted(held.entries, key=sort_key)])

    @web.get("/due", response_class=HTMLResponse)
    def due(request: Request) -> HTMLResponse:
        who = viewer(request, ("auditor", "owner"))
        when = now() if who.role == "owner" else instant_of(request, who)
        with engine.connect() as conn:
            held = attestations.latest_at(conn, when)
        mine = who.controls if who.role == "owner" else None
        rows = sorted((a for a in held.values() if mine is None or a.control in mine),
                      key=lambda a: a.review_due)
        return page("due.html", who=who, at=when, rows=rows, path="/due",
                    soon=when + timedelta(days=30), signer=signer is not None,
                    csrf=csrf.token(who), done=request.query_params.get("done"))

    @web.post("/attest")
    async def attest(request: Request) -> Response:
        who = viewer(request, ("owner",))
        fields = await form(request)
        csrf.check(request, who, fields.get("csrf"))
        if signer is None:
            raise Refused(503, "this server holds no signing key: attestations are not taken")
        control_id = fields.get("control", "")
        if control_id not in who.controls:
            raise Refused(403, f"token {who.name!r} may attest only {', '.join(who.controls)}")
        try:
            att, _ = attestations.attest(
                engine, signer, control_id, fields.get("statement", ""), fields.get("owner", ""),
                [], fields.get("review_every") or attestations.DEFAULT_REVIEW,
                submitted_by=f"web page, token {who.name!r} (id {who.token_id})")
        except attestations.AttestationError as exc:
            raise Refused(422, str(exc)) from None
        return RedirectResponse(f"/due?done={att.control}", status_code=303)

    @web.get("/downloads", response_class=HTMLResponse)
    def downloads(request: Request) -> HTMLResponse:
        who = viewer(request)
        start = _optional_instant(request, "from") or who.window_start
        end = _optional_instant(request, "to") or who.window_end or now()
        for edge in (start, end):
            if edge is not None and not who.allows(edge):
                raise Refused(403, f"{edge.isoformat()} is outside this token's window "
                                   f"({who.window_text()})")
        if start is None:
            start = end - timedelta(days=90)
        if start > end:
            raise Refused(400, "from is after to")
        return page("downloads.html", who=who, at=None, start=start, end=end,
                    path="/downloads")

    return web


def posture_view(states: list[ControlState], status: str | None, theme: str | None,
                 source: str | None) -> dict[str, Any]:
    """The posture page's rows and filters: per control its status and counts."""
    sources = sorted({c.check.provider for s in states for c in s.checks})
    themes = sorted({s.theme for s in states})
    rows = []
    for s in states:
        if (status and s.status != status) or (theme and s.theme != theme):
            continue
        checks = [c for c in s.checks if not source or c.check.provider == source]
        if source and not checks:
            continue
        rows.append({"id": s.id, "title": s.title, "theme": s.theme, "status": s.status,
                     "checks": len(checks),
                     "failing_checks": sum(c.status == "fail" for c in checks),
                     "failing_resources": sum(c.counts.get("fail", 0) for c in checks),
                     "evidence_at": s.evidence_at})
    return {"rows": rows, "totals": Counter(r["status"] for r in rows), "statuses": STATUSES,
            "themes": themes, "sources": sources,
            "chosen": {"status": status, "theme": theme, "source": source}}


def _optional_instant(request: Request, name: str) -> datetime | None:
    from collector.api.app import _rfc3339, utc

    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return utc(_rfc3339(raw))
    except ValueError as exc:
        raise Refused(400, f"{name}: {exc}") from None
