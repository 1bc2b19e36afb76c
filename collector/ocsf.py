"""OCSF Compliance Finding (class 2003, schema 1.1.0) records: one per check result that held
during a window, written as JSON lines.

A result first recorded within the window is a `Create` (activity 1); one carried over from
before the window is an `Update` (activity 2). `time` is when the result was last collected in
the window. The evidence digests travel in `unmapped.annexa`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Connection

from checks.registry import REGISTRY
from collector.canonical import canonical
from collector.interchange import WindowResult, check_controls, results_in_window
from collector.oscal import annexa_version

SCHEMA_VERSION = "1.1.0"
CLASS_UID, CATEGORY_UID = 2003, 2
STANDARD = "ISO/IEC 27001:2022"
_ACTIVITY = {1: "Create", 2: "Update"}
_SEVERITY = {"info": (1, "Informational"), "low": (2, "Low"), "medium": (3, "Medium"),
             "high": (4, "High"), "critical": (5, "Critical")}
# Annexa result -> OCSF compliance status (1 Pass, 3 Fail, 99 Other) and finding status
# (1 New: needs attention, 4 Resolved: nothing to do).
_COMPLIANCE = {"pass": (1, "Pass"), "fail": (3, "Fail"), "error": (99, "Other"),
               "not_applicable": (99, "Other")}
_FINDING = {"pass": (4, "Resolved"), "fail": (1, "New"), "error": (1, "New"),
            "not_applicable": (4, "Resolved")}
_CLOUD = {"aws": "AWS", "azure": "Azure", "gcp": "GCP"}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def record(r: WindowResult) -> dict[str, Any]:
    chk = REGISTRY.get(r.check_id)
    activity = 1 if r.opened_in_window else 2
    severity_id, severity = _SEVERITY.get(chk.severity if chk else "", (0, "Unknown"))
    comp_id, comp = _COMPLIANCE.get(r.status, (0, "Unknown"))
    status_id, status = _FINDING.get(r.status, (99, "Other"))
    controls = sorted(chk.controls) if chk else []
    out: dict[str, Any] = {
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "activity_id": activity,
        "activity_name": _ACTIVITY[activity],
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"Compliance Finding: {_ACTIVITY[activity]}",
        "time": _ms(r.collected),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "message": r.reason,
        "metadata": {
            "version": SCHEMA_VERSION,
            "uid": f"{r.source}:{r.id}:{_ms(r.collected)}",
            "product": {"name": "Annexa", "vendor_name": "Annexa", "version": annexa_version()},
        },
        "compliance": {
            "control": controls[0] if controls else r.check_id,
            "requirements": controls,
            "standards": [STANDARD],
            "status": comp,
            "status_id": comp_id,
            "status_detail": r.reason,
        },
        "finding_info": {
            "uid": f"annexa:{r.source}:{r.id}",
            "title": chk.title if chk else r.check_id,
            "desc": r.reason,
            "types": [r.check_id],
            "first_seen_time": _ms(r.first_seen),
            "last_seen_time": _ms(r.collected),
        },
        "resources": [{"uid": r.subject, "type": r.kind, "region": r.region}],
        "unmapped": {"annexa": {
            "source": r.source, "check_id": r.check_id, "result": r.status,
            "result_digest": r.result_digest, "evidence": r.evidence,
            "valid_from_run": r.valid_from_run, "valid_to_run": r.valid_to_run,
        }},
    }
    provider = _CLOUD.get(r.kind.split(".", 1)[0])
    if provider:
        out["cloud"] = {"provider": provider, "region": r.region}
    if chk and chk.remediation:
        out["remediation"] = {"desc": chk.remediation}
    return out


def records(conn: Connection, start: datetime, end: datetime,
            only: list[str] | None = None) -> Iterator[dict[str, Any]]:
    for r in results_in_window(conn, start, end, check_controls(only)):
        yield record(r)


def write_lines(conn: Connection, start: datetime, end: datetime, out: TextIO,
                only: list[str] | None = None) -> int:
    count = 0
    for rec in records(conn, start, end, only):
        out.write(canonical(rec).decode("utf-8") + "\n")
        count += 1
    return count
