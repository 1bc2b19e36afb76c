"""Jinja2 with autoescape on every template, and control characters shown as text. The headers
every page carries (a strict Content-Security-Policy: own origin only, no inline script, so the
page works on a network without internet and hostile evidence cannot run) are set with the
API's, in collector/api/headers.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

HERE = Path(__file__).parent

# C0 and C1 controls other than tab and newline, and the bidirectional overrides: shown as
# escapes, so a name cannot hide text or reorder what the auditor reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", value)
    return value


def stamp(value: datetime | None) -> str:
    """An instant as the URLs and the page show it: RFC 3339, UTC, `Z`."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def link(path: str, at: datetime | None = None, **params: Any) -> str:
    query = {k: v for k, v in params.items() if v is not None and v != ""}
    if at is not None:
        query["at"] = stamp(at)
    return path + ("?" + urlencode(query) if query else "")


ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True,
                  undefined=StrictUndefined, finalize=visible, trim_blocks=True,
                  lstrip_blocks=True)
ENV.globals.update(link=link, stamp=stamp)


def page(name: str, code: int = 200, **context: Any) -> HTMLResponse:
    html = ENV.get_template(name).render(**{"at": None, "path": None, "extra": {}, **context})
    return HTMLResponse(html, status_code=code)
