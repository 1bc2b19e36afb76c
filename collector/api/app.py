"""The read-only auditor API: posture and snapshots at any instant, results, evidence by digest,
runs, and exports. Every route needs a bearer token (`annexa token create`); every request is
logged (collector/api/access.py). The only route that writes is `POST /attestations`, for owner
tokens (collector/api/attest.py), served when the app is given the signing key."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator
from sqlalchemy import Engine
from starlette.background import BackgroundTask

from collector import ocsf, oscal
from collector.api import attest, models, queries
from collector.api.access import AccessLogMiddleware
from collector.api.bad_tokens import BadTokenLimiter
from collector.api.headers import HeadedFastAPI
from collector.bundle import BundleError, export_bundle
from collector.canonical import canonical
from collector.ledger import Signer
from collector.posture import control_states
from collector.schema import now
from collector.snapshot import snapshot
from collector.tokens import Principal

READ_ROLES = ("auditor",)
_PROBLEM = {"model": models.Problem}
COMMON = {401: {**_PROBLEM, "description": "missing, unknown, revoked or expired token"},
          403: {**_PROBLEM, "description": "the instant or range lies outside the token's "
                                           "window, or the role may not read"},
          429: {**_PROBLEM, "description": "too many refused tokens from this client address: "
                                           "wait for the seconds of `Retry-After`"}}
RANGE = {400: {**_PROBLEM, "description": "`from` is after `to`"}}

_bearer = HTTPBearer(auto_error=False, description="a token from `annexa token create`")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value: Any) -> Any:
    # Strict, unlike pydantic's lax datetime (which would take "0.5" as a Unix time).
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, such as "
                         "2026-03-31T23:59:59Z")
    return datetime.fromisoformat(value.upper())


Instant = Annotated[datetime, BeforeValidator(_rfc3339)]
At = Annotated[Instant | None, Query(
    description="the instant (RFC 3339, e.g. 2026-03-31T23:59:59Z); default now, or the end "
                "of the token's window")]
From = Annotated[Instant, Query(alias="from", description="start of the window (RFC 3339)")]
To = Annotated[Instant, Query(alias="to", description="end of the window (RFC 3339)")]
Controls = Annotated[list[models.ControlId] | None, Query(
    alias="control", description="only these controls (repeatable); default all")]


def principal(request: Request,
              _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
              ) -> Principal:
    """The caller, as identified by the access-log middleware (which logs it either way)."""
    who: Principal | None = getattr(request.state, "principal", None)
    if who is None:
        problem = getattr(request.state, "auth_problem", None) or "missing bearer token"
        raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
    if who.role not in READ_ROLES:
        raise HTTPException(403, f"role {who.role!r} may not read this API")
    return who


Who = Annotated[Principal, Depends(principal)]


def only_known_query(request: Request) -> None:
    """Refuse query parameters the route does not take: a misspelt `contol=A.8.24` must not
    silently answer for every control."""
    route = request.scope["route"]
    known = {field.alias for field in route.dependant.query_params}
    extra = [name for name in request.query_params if name not in known]
    if extra:
        raise RequestValidationError([
            {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter",
             "input": request.query_params[name]} for name in extra])


def utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # an offset pushed year 1 or 9999 out of range: the nearest end
        edge = datetime.min if value.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def instant(who: Principal, at: datetime | None) -> datetime:
    if at is None:
        current = now()
        if who.window_end is not None and current > who.window_end:
            return who.window_end
        if who.window_start is not None and current < who.window_start:
            return who.window_start
        return current
    at = utc(at)
    if not who.allows(at):
        raise HTTPException(403, f"{at.isoformat()} is outside this token's window "
                                 f"({who.window_text()})")
    return at


def clip(who: Principal, start: datetime | None, end: datetime | None,
         ) -> tuple[datetime | None, datetime | None]:
    """The range [start, end] cut to the token's window; 403 if nothing of it is inside."""
    start = utc(start) if start else None
    end = utc(end) if end else None
    if start and end and start > end:
        raise HTTPException(400, f"from ({start.isoformat()}) is after to ({end.isoformat()})")
    outside = HTTPException(403, f"the range lies outside this token's window "
                                 f"({who.window_text()})")
    if who.window_start is not None:
        if end is not None and end < who.window_start:
            raise outside
        start = max(start or who.window_start, who.window_start)
    if who.window_end is not None:
        if start is not None and start > who.window_end:
            raise outside
        end = min(end or who.window_end, who.window_end)
    return start, end


def _window(who: Principal, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    clipped = clip(who, start, end)
    assert clipped[0] is not None and clipped[1] is not None  # both were given
    return clipped[0], clipped[1]


def _ids(controls: list[models.ControlId] | None) -> list[str] | None:
    return [c.value for c in controls] if controls else None


def create_app(engine: Engine, freshness: timedelta, public_key_hex: str,
               signer: Signer | None = None, bad_tokens: BadTokenLimiter | None = None,
               ) -> FastAPI:
    app = HeadedFastAPI(
        title="Annexa auditor API",
        version=oscal.annexa_version(),
        description=__doc__,
        docs_url=None, redoc_url=None,  # their pages load scripts from the internet
    )
    app.add_middleware(AccessLogMiddleware, engine=engine,
                       bad_tokens=bad_tokens or BadTokenLimiter())
    api = APIRouter(responses=COMMON,
                    dependencies=[Depends(principal), Depends(only_known_query)])

    @api.get("/controls", response_model=models.Controls)
    def get_controls(who: Who, at: At = None, control: Controls = None) -> dict[str, Any]:
        """Status of each Annex A control at an instant."""
        when = instant(who, at)
        with engine.connect() as conn:
            states = control_states(conn, when, freshness, _ids(control))
        return {"at": when, "controls": [{
            "id": s.id, "title": s.title, "theme": s.theme, "status": s.status,
            "evidence_at": s.evidence_at,
            "failing_checks": [c.check.id for c in s.checks if c.status == "fail"],
        } for s in states]}

    @api.get("/snapshot", response_model=models.Snapshot)
    def get_snapshot(
        who: Who, at: At = None, control: Controls = None,
        failing_only: Annotated[bool, Query(
            description="list only failing and erroring results and their evidence")] = False,
        summary: Annotated[bool, Query(
            description="statuses and counts only, no result listed (fast on any estate; "
                        "/results pages through every result)")] = False,
    ) -> dict[str, Any]:
        """Everything known at an instant: per control its checks, every result with its
        evidence digests, the failing resources and the runs it rests on."""
        when = instant(who, at)
        with engine.connect() as conn:
            return snapshot(conn, when, _ids(control), freshness, failing_only=failing_only,
                            summary=summary)

    @api.get("/results", response_model=models.Results)
    def get_results(
        who: Who, at: At = None,
        check: Annotated[str | None, Query(pattern=r"^[a-z0-9_.]{1,200}$")] = None,
        status: models.ResultStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> dict[str, Any]:
        """Check results that held at an instant, by source, check and subject."""
        when = instant(who, at)
        with engine.connect() as conn:
            total, items = queries.results_at(conn, when, check=check, status=status,
                                              limit=limit, offset=offset)
        return {"at": when, "total": total, "items": items}

    @api.get("/evidence/{digest}", response_class=Response, responses={
        200: {"content": {"application/json": {"schema": {}}},
              "description": "the blob's canonical JSON: its SHA-256 is the digest"},
        404: {**_PROBLEM, "description": "no such evidence (within the token's window)"},
        410: {**_PROBLEM, "description": "the body was pruned by retention; the digest stays"}})
    def get_evidence(who: Who, digest: Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$")],
                     ) -> Response:
        """A piece of evidence by its SHA-256 digest, byte for byte as it was hashed."""
        window = (who.window_start, who.window_end) if who.windowed else None
        with engine.connect() as conn:
            try:
                body = queries.evidence(conn, digest, window)
            except queries.Pruned:
                raise HTTPException(410, f"evidence {digest} was pruned by retention") from None
        if body is None:
            raise HTTPException(404, f"no evidence {digest}" +
                                (" within this token's window" if window else ""))
        return Response(body, media_type="application/json")

    @api.get("/runs", response_model=models.Runs, responses=RANGE)
    def get_runs(
        who: Who,
        start: Annotated[Instant | None, Query(alias="from")] = None,
        end: Annotated[Instant | None, Query(alias="to")] = None,
        source: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> dict[str, Any]:
        """Sealed runs that finished in a range, in chain order, with their seals."""
        lo, hi = clip(who, start, end)
        with engine.connect() as conn:
            total, items = queries.runs_between(conn, lo, hi, source, limit, offset)
        return {"start": lo, "end": hi, "total": total, "items": items}

    @api.get("/exports/bundle", response_class=FileResponse, responses={
        **RANGE, 409: {**_PROBLEM, "description": "the window cannot be exported: no sealed run "
                                                  "had finished by `to`, or the ledger is broken"},
        200: {"content": {"application/zip": {"schema": {
            "type": "string", "format": "binary"}}},
            "description": "the export bundle, verifiable offline with `annexa verify-bundle`"}})
    def export_bundle_zip(who: Who, start: From, end: To, control: Controls = None,
                          ) -> FileResponse:
        """The evidence bundle of a window (zip: report, manifest, evidence, proofs)."""
        lo, hi = _window(who, start, end)
        folder = Path(tempfile.mkdtemp(prefix="annexa-bundle-"))
        out = folder / "annexa-bundle.zip"
        try:
            export_bundle(engine, lo, hi, _ids(control), out, public_key_hex, freshness)
        except BundleError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(409, str(exc)) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(out, media_type="application/zip", filename=out.name,
                            background=BackgroundTask(shutil.rmtree, folder, True))

    @api.get("/exports/oscal", responses={**RANGE, 200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "OSCAL assessment-results"}}, response_class=JSONResponse)
    def export_oscal(who: Who, start: From, end: To, control: Controls = None) -> JSONResponse:
        """OSCAL assessment-results for a window."""
        lo, hi = _window(who, start, end)
        with engine.connect() as conn:
            doc = oscal.assessment_results(conn, lo, hi, freshness, _ids(control))
        return JSONResponse(doc)

    @api.get("/exports/ocsf", response_class=StreamingResponse, responses={**RANGE, 200: {
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        "description": "OCSF Compliance Findings (class 2003), one JSON object per line"}})
    def export_ocsf(who: Who, start: From, end: To, control: Controls = None,
                    ) -> StreamingResponse:
        """OCSF Compliance Finding records for a window, as JSON lines."""
        lo, hi = _window(who, start, end)

        def lines() -> Iterator[bytes]:
            with engine.connect() as conn:
                for record in ocsf.records(conn, lo, hi, _ids(control)):
                    yield canonical(record) + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    app.include_router(api)
    if signer is not None:
        app.include_router(attest.router(engine, signer, _bearer))
    # Imported here: the web pages use this module's rules for instants and windows.
    from collector import web

    web.mount(app, engine, freshness, signer)
    return app
