"""Canonical JSON, secret redaction and content digests: how evidence becomes bytes."""

from __future__ import annotations

import hashlib
import re
from _json import make_encoder
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import islice
from json.encoder import encode_basestring
from typing import Any

REDACTED = "[REDACTED]"

# Field names (lower-cased, without _ and -) whose values are secrets wherever they appear.
_SECRET_NAMES = frozenset({
    "userdata", "environment", "variables", "credentials", "apikey", "clientsecret",
    "connectionstring", "privatekey", "secret", "secretaccesskey", "sessiontoken", "password",
    "masteruserpassword", "accesstoken", "refreshtoken", "sastoken", "token",
})
# "token" ends API_TOKEN and github_token as well as SessionToken; it also ends NextToken and
# ClientToken, which are no secrets but no evidence either: no check reads them.
_SECRET_SUFFIXES = ("password", "secret", "secretkey", "privatekey", "apikey", "connectionstring",
                    "token")
_SECRET_WORDS = _SECRET_NAMES | set(_SECRET_SUFFIXES)
# Words that name an inline secret: "password=...", "token=..." inside an ordinary string.
_INLINE_WORDS = ("password", "passwd", "pwd", "secret", "token")
# Lower-cased fragments of which any secret name or inline secret has at least one. JSON text
# without any of them (after dropping _ and -) needs no redaction: the fast path for most data.
_FRAGMENTS = _SECRET_WORDS | {"private key", "passwd", "pwd="}
_NEEDLES = tuple(sorted(
    n for n in _FRAGMENTS if not any(other != n and other in n for other in _FRAGMENTS)))
# What a secret looks like in normalised JSON text: a secret name closing a string, an inline
# pair, a PEM header.
_NAME_ENDS = tuple(f'{name}"' for name in sorted(_SECRET_WORDS))
_INLINE_MARKS = (*(f"{word}=" for word in _INLINE_WORDS), "private key")
# Secrets that hide inside ordinary strings: PEM private keys and password=... pairs.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_INLINE = re.compile(rf"(?i)\b({'|'.join(_INLINE_WORDS)})=([^;&\s\"']+)")


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
    """False only when `text` (the data as JSON) cannot contain anything redact() would change.

    A secret field's name, or a tag's label naming one, ends with a secret name, so in the JSON
    it ends right before a closing quote: "password_enabled" holds a needle and is no secret.
    Every IAM user's credential report has such names; telling them apart here spares a walk
    of the whole resource."""
    norm = text.lower().replace("_", "").replace("-", "")
    return any(needle in norm for needle in _NEEDLES) and (
        any(end in norm for end in _NAME_ENDS) or any(mark in norm for mark in _INLINE_MARKS))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value)


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
            new = REDACTED if secret and not _empty(v) else redact(v)
            if out is None and new is not v:
                out = dict(islice(value.items(), i))
            if out is not None:
                out[k] = new
        return value if out is None else out
    if isinstance(value, list | tuple):
        items = [redact(v) for v in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else items
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
