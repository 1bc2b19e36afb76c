"""`annexa soa`: the Statement of Applicability as an auditor reads it, as of any instant.

One row per Annex A control, all 93 every time: whether it applies and why, its implementation
status and owner (from the SoA in force), how it is evidenced (the checks mapped to it and the
attestation in force), its current status and the time of its newest evidence (from posture).
A control the SoA does not list reads `applicable: not stated`.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import Connection

from collector.posture import control_states
from collector.safe_output import CsvWriter
from collector.soa import soa_at

COLUMNS = ("control", "title", "theme", "applicable", "justification", "implementation",
           "owner", "how", "checks", "attestations", "status", "last_evidence_at")


def statement(conn: Connection, at: datetime, freshness: timedelta) -> dict[str, Any]:
    """The SoA at `at`, JSON-able: the version in force and a row per control."""
    version = soa_at(conn, at).run
    rows = []
    for state in control_states(conn, at, freshness):
        entry, att = state.soa, state.attestation
        applicable = "not stated" if entry is None else ("yes" if entry.applicable else "no")
        rows.append({
            "control": state.id, "title": state.title, "theme": state.theme,
            "applicable": applicable,
            "justification": entry.justification if entry else None,
            "implementation": entry.implementation if entry else None,
            # The SoA names the owner; without one, who attested is the best answer there is.
            "owner": (entry.owner if entry else None) or (att.owner if att else None),
            "how": entry.how if entry else None,
            "checks": [c.check.id for c in state.checks],
            "attestations": [att.id] if att else [],
            "status": state.status,
            "last_evidence_at": state.evidence_at.isoformat() if state.evidence_at else None,
        })
    return {"at": at.isoformat(), "soa_version": version.as_dict() if version else None,
            "controls": rows}


def render_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2)


def render_csv(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(COLUMNS)
    for row in doc["controls"]:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(value)
    return str(value)


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:90em;color:#1d1d1f;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-family:ui-monospace,monospace;
font-size:.9em;word-break:break-all}.status{font-weight:600;padding:.05em .4em;border-radius:3px}
.pass{background:#d8f3dc}.fail{background:#ffd6d6}.stale,.unknown{background:#fff1c2}
.manual,.not_applicable{background:#e8e8ee}.muted{color:#666}
"""


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained page (no script, no external asset) with one row per control."""
    version = doc["soa_version"]
    if version:
        source = (f"SoA version: run {version['run']} (#{version['seq']}), sealed "
                  f"{escape(version['finished_at'])}, chain hash "
                  f"<code>{escape(version['chain_hash'])}</code>")
    else:
        source = "No Statement of Applicability had been loaded by then."
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in COLUMNS)
    body = "\n".join(_html_row(row) for row in doc["controls"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Statement of Applicability as of {escape(doc['at'])}</title>"
        f"<style>{_STYLE}</style></head><body>\n"
        f"<h1>Statement of Applicability</h1>\n<p>ISO/IEC 27001:2022 Annex A, as of "
        f"{escape(doc['at'])}. {source}</p>\n"
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n"
        "</body></html>\n")


def _html_row(row: dict[str, Any]) -> str:
    cells = []
    for column in COLUMNS:
        value = row[column]
        if column == "status":
            cells.append(f'<td><span class="status {escape(value)}">{escape(value)}</span></td>')
        elif column in ("checks", "attestations"):
            cells.append("<td>" + "<br>".join(f"<code>{escape(v)}</code>" for v in value)
                         + "</td>")
        elif value is None:
            cells.append('<td class="muted">-</td>')
        else:
            cells.append(f"<td>{escape(str(value))}</td>")
    return f'<tr id="{escape(row["control"])}">' + "".join(cells) + "</tr>"


RENDERERS = {"csv": render_csv, "html": render_html, "json": render_json}
