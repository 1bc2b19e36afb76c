"""The one route that writes: `POST /attestations`, for `owner` tokens and only for the controls
each was made for (`annexa token create --role owner --controls A.5.1,A.5.2`). It records the
attestation exactly as `annexa attest` does: validated first, then stored and sealed in one run
of `annexa-attestations`; a refused request stores nothing (and is logged like every request).
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime,
# and the owner dependency is local to router().
import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine

from collector import attestations
from collector.api import models
from collector.ledger import Signer
from collector.soa import EMAIL
from collector.tokens import Principal

_PROBLEM = {"model": models.Problem}


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=attestations.MAX_NAME_CHARS,
                      description="the file name: no directory, not '.' or '..', no control "
                                  "characters")
    content_base64: str = Field(description="the file's bytes, base64 (RFC 4648)")

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        problem = attestations.name_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class AttestationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    control: models.ControlId
    statement: str = Field(min_length=1, max_length=attestations.MAX_STATEMENT_CHARS,
                           description="what is in place, and how")
    owner: str = Field(pattern=EMAIL.pattern, max_length=320,
                       description="the email address of who attests")
    review_every: str = Field(attestations.DEFAULT_REVIEW, pattern=r"^[1-9]\d{0,5}(s|m|h|d|w)$",
                              description="review period: after it the control is stale")
    documents: list[DocumentIn] = Field([], max_length=20)


class DocumentOut(BaseModel):
    name: str
    digest: str
    size: int


class AttestationOut(BaseModel):
    id: str
    control: str
    statement: str
    owner: str
    attested_at: datetime
    review_every: str
    review_due: datetime
    documents: list[DocumentOut]
    submitted_by: str
    run: int
    seq: int
    chain_hash: str


def router(engine: Engine, signer: Signer, bearer: HTTPBearer) -> APIRouter:
    api = APIRouter()

    def owner(request: Request,
              _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
              ) -> Principal:
        who: Principal | None = getattr(request.state, "principal", None)
        if who is None:
            problem = getattr(request.state, "auth_problem", None) or "missing bearer token"
            raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
        if who.role != "owner":
            raise HTTPException(403, f"role {who.role!r} may not attest: an owner token is "
                                     "needed")
        return who

    @api.post("/attestations", status_code=201, response_model=AttestationOut, responses={
        401: {**_PROBLEM, "description": "missing, unknown, revoked or expired token"},
        403: {**_PROBLEM, "description": "not an owner token, or not one for this control"},
        409: {**_PROBLEM, "description": "the SoA in force excludes the control"},
        422: {**_PROBLEM, "description": "invalid request, document or review period"},
        429: {**_PROBLEM, "description": "too many refused tokens from this client address"}})
    def post_attestation(body: AttestationIn,
                         who: Annotated[Principal, Depends(owner)]) -> dict[str, Any]:
        """Attest a control that the token owns: the statement and documents are stored
        content-addressed and sealed into the ledger, with a review date."""
        control = body.control.value
        if control not in who.controls:
            raise HTTPException(403, f"token {who.name!r} may attest only "
                                     f"{', '.join(who.controls)}, not {control}")
        documents = []
        for i, doc in enumerate(body.documents):
            try:
                content = base64.b64decode(doc.content_base64, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPException(422, f"documents[{i}] ({doc.name}): content_base64 is not "
                                         "valid base64") from None
            documents.append(attestations.Document(doc.name, content))
        try:
            att, run = attestations.attest(
                engine, signer, control, body.statement, body.owner, documents,
                body.review_every, submitted_by=f"api token {who.name!r} (id {who.token_id})")
        except attestations.ExcludedControl as exc:
            raise HTTPException(409, str(exc)) from None
        except attestations.AttestationError as exc:
            raise HTTPException(422, str(exc)) from None
        return {**att.as_dict(), "run": run.run_id, "seq": run.seq,
                "chain_hash": run.chain_hash}

    return api
