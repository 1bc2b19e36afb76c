"""Canonical JSON, secret redaction and content digests: how evidence becomes bytes."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
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
# Lower-cased fragments of which any secret name or inline secret has at least one. JSON text
# without any of them (after dropping _ and -) needs no redaction: the fast path for most data.
_NEEDLES = tuple(sorted(
    n for n in (_SECRET_NAMES | set(_SECRET_SUFFIXES) | {"private key", "passwd", "pwd="})
    if not any(other != n and other in n for other in
               (_SECRET_NAMES | set(_SECRET_SUFFIXES) | {"private key", "passwd", "pwd="}))))
# Secrets that hide inside ordinary strings: PEM private keys and password=... pairs.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_INLINE = re.compile(r"(?i)\b(password|passwd|pwd|secret|token)=([^;&\s\"']+)")


@lru_cache(maxsize=8192)
def is_secret_name(name: str) -> bool:
    norm = name.lower().replace("_", "").replace("-", "")
    return norm in _SECRET_NAMES or norm.endswith(_SECRET_SUFFIXES)


@lru_cache(maxsize=1024)
def _is_value_field(name: str) -> bool:
    return name.lower() == "value"


@lru_cache(maxsize=1024)
def _is_label_field(name: str) -> bool:
    return name.lower() in ("key", "name")


def _redact_string(value: str) -> str:
    if "PRIVATE KEY-----" in value:
        value = _PEM.sub(REDACTED, value)
    if "=" in value:
        value = _INLINE.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    return value


def _names_a_secret(pair: dict[Any, Any]) -> bool:
    """Tags and environment lists name their value in a sibling field:
    {"Key": "db_password", "Value": ...}, {"Name": "API_TOKEN", "Value": ...}."""
    return any(_is_value_field(str(k)) for k in pair) and any(
        _is_label_field(str(k)) and isinstance(v, str) and is_secret_name(v)
        for k, v in pair.items())


def might_hold_secrets(text: str) -> bool:
    """False only when `text` (the data as JSON) cannot contain anything redact() would change."""
    norm = text.lower().replace("_", "").replace("-", "")
    return any(needle in norm for needle in _NEEDLES)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


def redact(value: Any) -> Any:
    """A copy of `value` with secret fields replaced by a fixed marker (so digests stay stable)."""
    if isinstance(value, dict):
        paired = len(value) <= 4 and _names_a_secret(value)
        out = {}
        for k, v in value.items():
            name = str(k)
            secret = is_secret_name(name) or (paired and _is_value_field(name))
            out[k] = REDACTED if secret and not _empty(v) else redact(v)
        return out
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


# One encoder for the process: json.dumps with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                            default=_default)


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal data always gives equal bytes."""
    return _ENCODER.encode(value).encode("utf-8")


def redacted_canonical(value: Any) -> tuple[Any, bytes]:
    """The redacted data and its canonical bytes, skipping the walk when nothing can match."""
    text = _ENCODER.encode(value)
    if not might_hold_secrets(text):
        return value, text.encode("utf-8")
    clean = redact(value)
    return clean, canonical(clean)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
