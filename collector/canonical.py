"""Canonical JSON, secret redaction and content digests: how evidence becomes bytes."""

from __future__ import annotations

import hashlib
from _json import make_encoder
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from json.encoder import encode_basestring
from typing import Any

from collector.secret_patterns import REDACTED, candidate, is_secret_name, redact_text


@lru_cache(maxsize=1024)
def _is_value_field(name: str) -> bool:
    return name.lower() == "value"


@lru_cache(maxsize=1024)
def _is_label_field(name: str) -> bool:
    return name.lower() in ("key", "name")


def _names_a_secret(pair: dict[Any, Any]) -> bool:
    """Tags and environment lists name their value in a sibling field:
    {"Key": "db_password", "Value": ...}, {"Name": "API_TOKEN", "Value": ...}."""
    return any(_is_value_field(str(k)) for k in pair) and any(
        _is_label_field(str(k)) and isinstance(v, str) and is_secret_name(v)
        for k, v in pair.items())


def might_hold_secrets(text: str) -> bool:
    """False only when `text` (the data as JSON) cannot contain anything redact() would
    change; see secret_patterns.candidate()."""
    return candidate(text)


def _kept(value: Any) -> bool:
    """Values of a secret-named field that are kept: nothing, and flags such as
    AllowUsersToChangePassword, which hold no secret and which checks read."""
    return value is None or isinstance(value, bool) or (
        isinstance(value, str | list | dict) and not value)


def redact(value: Any) -> Any:
    """`value` with secret fields replaced by a fixed marker (so digests stay stable). Parts
    with nothing to redact are returned as they are, not copied: callers can tell by identity
    whether anything changed."""
    if isinstance(value, dict):
        paired = len(value) <= 4 and _names_a_secret(value)
        out: dict[Any, Any] | None = None
        for i, (k, v) in enumerate(value.items()):
            name = str(k)
            secret = is_secret_name(name) or (paired and _is_value_field(name))
            new = REDACTED if secret and not _kept(v) else redact(v)
            if out is None and new is not v:
                out = dict(islice(value.items(), i))
            if out is not None:
                out[k] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = [redact(v) for v in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, str):
        return redact_text(value)
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


# The C encoder that json.JSONEncoder.encode() builds anew on every call, built once: it runs
# on every resource of every collection. No circular-reference markers: evidence is a tree.
_ENCODE = make_encoder(None, _default, encode_basestring, None, ":", ",", True, False, True)


def _encode(value: Any) -> str:
    return "".join(_ENCODE(value, 0))


def canonical(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: equal data always gives equal bytes."""
    return _encode(value).encode("utf-8")


def redacted_canonical(value: Any) -> tuple[Any, bytes]:
    """The redacted data and its canonical bytes, skipping the walk when nothing can match."""
    text = _encode(value)
    if might_hold_secrets(text):
        clean = redact(value)
        if clean is not value:
            return clean, canonical(clean)
    return value, text.encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
