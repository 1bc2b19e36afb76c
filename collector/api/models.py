"""The response shapes of the auditor API, as they appear in its OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key

ControlStatus = Literal["pass", "fail", "stale", "unknown", "manual", "not_applicable"]
ResultStatus = Literal["pass", "fail", "error", "not_applicable"]

# The 93 Annex A control ids, so that the OpenAPI document says which values are valid.
ControlId = Enum(  # type: ignore[misc]
    "ControlId", {c: c for c in sorted(catalogue(), key=sort_key)}, type=str)


class Problem(BaseModel):
    detail: str


class ControlSummary(BaseModel):
    id: str
    title: str
    theme: str
    status: ControlStatus
    evidence_at: datetime | None
    failing_checks: list[str]


class Controls(BaseModel):
    at: datetime
    controls: list[ControlSummary]


class ResultRow(BaseModel):
    source: str
    check_id: str
    subject: str
    kind: str
    region: str
    status: str
    reason: str
    evidence: list[str]
    result_digest: str
    valid_from_run: int
    valid_to_run: int | None


class Results(BaseModel):
    at: datetime
    total: int
    items: list[ResultRow]


class CollectionErrorRow(BaseModel):
    scope: str
    region: str
    service: str
    kinds: str
    message: str


class RunRow(BaseModel):
    id: int
    seq: int
    source: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    resources: int
    results: int
    errors: int
    message: str | None
    merkle_root: str | None
    prev_hash: str | None
    chain_hash: str | None
    signature: str | None
    key_id: str | None
    collection_errors: list[CollectionErrorRow]


class Runs(BaseModel):
    start: datetime | None
    end: datetime | None
    total: int
    items: list[RunRow]


Snapshot = dict[str, Any]
