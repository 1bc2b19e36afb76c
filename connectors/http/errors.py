"""What an HTTPS API said when it refused, in one line that names the call and the cause."""

from __future__ import annotations

import json
from typing import Any

import requests

_MESSAGE_LIMIT = 300


class HttpError(Exception):
    """A call that did not succeed: the status (0 when no answer came), the provider's error
    code and message, and the operation that was attempted."""

    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        self.operation, self.status, self.code, self.message = operation, status, code, message
        where = f"HTTP {status}" if status else "no answer"
        super().__init__(_clip(f"{operation}: {where} {code}: {message}".rstrip(": ")))

    @property
    def denied(self) -> bool:
        return self.status in (401, 403)


class MalformedResponse(HttpError):
    """An answer that is not what the API documents: not JSON, the wrong shape, too large."""

    def __init__(self, operation: str, message: str, status: int = 200) -> None:
        super().__init__(operation, status, "MalformedResponse", message)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 3] + "..."


def error_detail(response: requests.Response) -> tuple[str, str]:
    """(code, message) from an error body in any of the shapes these providers use: Azure,
    Graph and Google `{"error": {"code", "message", "status", "errors": [{"reason"}]}}`, OAuth
    `{"error", "error_description"}`, Okta `{"errorCode", "errorSummary"}`, GitHub
    `{"message"}` and GraphQL `{"errors": [{"type", "message"}]}`; else the start of the
    body as text."""
    try:
        body: Any = json.loads(response.content or b"null")
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            reasons = [e.get("reason") for e in error.get("errors") or []
                       if isinstance(e, dict) and e.get("reason")]
            # A numeric `code` (Google's) only repeats the HTTP status.
            code = error.get("status") or (error.get("code")
                                           if not isinstance(error.get("code"), int) else "")
            if reasons:
                code = f"{code} ({', '.join(map(str, reasons))})".strip()
            return str(code), str(error.get("message") or "")
        if isinstance(error, str):
            return error, str(body.get("error_description") or "")
        if "errorCode" in body:
            return str(body["errorCode"]), str(body.get("errorSummary") or "")
        if "message" in body:
            return "", str(body["message"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("type") or ""), str(errors[0].get("message") or "")
    text = response.content[:200].decode("utf-8", "replace") if response.content else ""
    return response.reason or "", text


def reasons(response: requests.Response) -> set[str]:
    """Google's `error.errors[].reason` and `error.status` (RESOURCE_EXHAUSTED, ...)."""
    try:
        body = json.loads(response.content or b"null")
    except (ValueError, RecursionError):
        return set()
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return set()
    found = {str(e["reason"]) for e in error.get("errors") or []
             if isinstance(e, dict) and e.get("reason")}
    if error.get("status"):
        found.add(str(error["status"]))
    return found
