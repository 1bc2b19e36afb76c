"""Bearer tokens of the auditor API: made once, shown once, stored only as a SHA-256 hash.

A token has a role, an optional expiry and an optional window [start, end]: a windowed token
sees nothing from outside its window. `auditor` can only read. `owner` can only attest, and only
the controls it was made for (`--controls A.5.1,A.5.2`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import Engine

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key
from collector.schema import ApiToken, now

TOKENS = ApiToken.__table__
ROLES = ("auditor", "owner")
PREFIX = "annexa_"


class TokenRefused(Exception):
    """Why a presented token does not authenticate (the API answers 401 with this text)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's identity and its limits."""

    token_id: int
    name: str
    role: str
    window_start: datetime | None
    window_end: datetime | None
    expires_at: datetime | None
    controls: tuple[str, ...] = ()  # role `owner`: the controls it may attest

    @property
    def windowed(self) -> bool:
        return self.window_start is not None or self.window_end is not None

    def allows(self, at: datetime) -> bool:
        return ((self.window_start is None or at >= self.window_start)
                and (self.window_end is None or at <= self.window_end))

    def window_text(self) -> str:
        start = self.window_start.isoformat() if self.window_start else "the beginning"
        end = self.window_end.isoformat() if self.window_end else "now"
        return f"{start} .. {end}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(engine: Engine, *, role: str, name: str, window_start: datetime | None = None,
           window_end: datetime | None = None, expires_at: datetime | None = None,
           controls: list[str] | None = None) -> tuple[str, int]:
    """A new token (returned once, never stored in clear) and its id."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "owner":
        if not controls:
            raise ValueError("an owner token needs the controls it may attest (--controls)")
        unknown = [c for c in controls if c not in catalogue()]
        if unknown:
            raise ValueError(f"--controls: {unknown[0]!r} is not an Annex A 2022 control id")
        if window_start or window_end:
            raise ValueError("an owner token attests now: a --window is for auditor tokens")
    elif controls:
        raise ValueError(f"--controls is for owner tokens, not {role} tokens")
    if window_start and window_end and window_start > window_end:
        raise ValueError("the window starts after it ends")
    if expires_at is not None and expires_at <= now():
        raise ValueError(f"--expires {expires_at.isoformat()} is not in the future: the token "
                         "would never work")
    token = PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        token_id = conn.execute(TOKENS.insert().values(
            name=name, role=role, token_hash=digest(token), window_start=window_start,
            window_end=window_end, expires_at=expires_at, created_at=now(),
            controls=json.dumps(sorted(set(controls), key=sort_key)) if controls else None,
        )).inserted_primary_key[0]
    return token, int(token_id)


def identify(engine: Engine, token: str | None, at: datetime) -> Principal:
    """The principal behind `token`, or TokenRefused saying why not."""
    if not token:
        raise TokenRefused("missing bearer token (send Authorization: Bearer <token>)")
    with engine.connect() as conn:
        row = conn.execute(sa.select(TOKENS).where(TOKENS.c.token_hash == digest(token))).first()
    if row is None:
        raise TokenRefused("unknown token")
    if row.revoked_at is not None:
        raise TokenRefused(f"token {row.name!r} was revoked at {row.revoked_at.isoformat()}")
    if row.expires_at is not None and at >= row.expires_at:
        raise TokenRefused(f"token {row.name!r} expired at {row.expires_at.isoformat()}")
    return Principal(row.id, row.name, row.role, row.window_start, row.window_end,
                     row.expires_at, tuple(json.loads(row.controls)) if row.controls else ())


def listing(engine: Engine, at: datetime) -> list[dict[str, object]]:
    """Every token, never its secret, each with its `state` at `at`: active, expired or
    revoked."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(TOKENS).order_by(TOKENS.c.id)).mappings().all()
    return [{**{k: (json.loads(v) if k == "controls" and v else v) for k, v in row.items()
                if k != "token_hash"}, "state": state(row.revoked_at, row.expires_at, at)}
            for row in rows]


def state(revoked_at: datetime | None, expires_at: datetime | None, at: datetime) -> str:
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and at >= expires_at:
        return "expired"
    return "active"


def revoke(engine: Engine, ident: str) -> int:
    """Revoke the token with this id or name; returns how many tokens it revoked."""
    cond = TOKENS.c.name == ident
    if ident.isdigit():
        cond = sa.or_(cond, TOKENS.c.id == int(ident))
    with engine.begin() as conn:
        result = conn.execute(TOKENS.update().where(cond, TOKENS.c.revoked_at.is_(None))
                              .values(revoked_at=now()))
    return result.rowcount
