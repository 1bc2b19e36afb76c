"""Canonical JSON, secret redaction and content digests: how evidence becomes bytes."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

REDACTED = "[REDACTED]"

# Field names (lower-cased, without _ and -) whose values are secrets wherever they appear.
_SECRET_NAMES = frozenset({
    "userdata", "environment", "variables", "credentials", "apikey", "clientsecret",
    "connectionstring", "privatekey", "secret", "secretaccesskey", "sessiontoken", "password",
    "masteruserpassword", "accesstoken", "refreshtoken", "sastoken", "token",
})
_SECRET_SUFFIXES = ("password", "secret", "secretkey", "privatekey", "apikey", "connectionstring",
                    "sessiontoken", "accesstoken", "refreshtoken")
# Secrets that hide inside ordinary strings: PEM private keys and password=... pairs.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_INLINE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)=([^;&\s\"']+)")


def is_secret_name(name: str) -> bool:
    norm = name.lower().replace("_", "").replace("-", "")
    return norm in _SECRET_NAMES or norm.endswith(_SECRET_SUFFIXES)


def _redact_string(value: str) -> str:
    if "PRIVATE KEY-----" in value:
        value = _PEM.sub(REDACTED, value)
    if "=" in value:
        value = _INLINE.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    return value


def redact(value: Any) -> Any:
    """A copy of `value` with secret fields replaced by a fixed marker (so digests stay stable)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if v not in (None, "", [], {}) and is_secret_name(str(k)) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal data always gives equal bytes."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
