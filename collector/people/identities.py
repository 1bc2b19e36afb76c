"""Identities as each source's evidence describes them, in one shape: who they are (identifiers
to match), whether they can still be used, whether they hold privilege, whether they sign in
with MFA. An adapter per resource kind reads a stored resource's data into identities; it never
calls an API and never judges.

Identifiers are namespaced strings, so that one kind of id never matches another:
`email:alice@example.com`, `login:alice`, `entra:<object id>`, `github:octocat`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Statuses of a person in the identity provider that mean "no longer works here".
GONE = frozenset({"deprovisioned", "deactivated", "suspended", "disabled", "deleted",
                  "archived"})


@dataclass(frozen=True, slots=True)
class Identity:
    """One account in one source. `person` is set by identity providers: the account is a
    person's own record there (their status, their MFA). `active`: it can still be used to
    sign in or call an API, and `why_active` says how; None when that could not be read.
    `privileged`: it holds admin rights, named in `privileges`. `mfa`: True/False where the
    source has MFA of its own, None where it has none (or the evidence does not say).
    `human`: False for service identities."""

    kind: str
    key: str
    label: str
    identifiers: frozenset[str]
    active: bool | None  # None: the evidence that would say could not be read
    why_active: str = ""
    privileged: bool = False
    privileges: tuple[str, ...] = ()
    mfa: bool | None = None
    human: bool | None = True
    person: PersonFacts | None = None


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What an identity provider says of the person behind one of its accounts."""

    email: str
    status: str  # as the IdP says it, lower case: active, suspended, deprovisioned, ...
    status_changed: str | None = None  # when the IdP last changed it, if it says
    aliases: frozenset[str] = field(default_factory=frozenset)

    @property
    def gone(self) -> bool:
        return self.status in GONE


Adapter = Callable[[str, dict[str, Any]], Iterator[Identity]]
ADAPTERS: dict[str, Adapter] = {}
# Kinds whose accounts are people's own records (identity providers).
IDP_KINDS: set[str] = set()


def adapter(kind: str, *, idp: bool = False) -> Callable[[Adapter], Adapter]:
    """Register how resources of `kind` (key, data) become identities."""
    def register(func: Adapter) -> Adapter:
        ADAPTERS[kind] = func
        if idp:
            IDP_KINDS.add(kind)
        return func
    return register


def email(value: Any) -> str | None:
    """`value` as a lower-case email address, or None when it is not one."""
    if not isinstance(value, str) or "@" not in value or value.startswith("@"):
        return None
    return value.strip().lower()


def identifiers(*, emails: Any = (), logins: Any = (), **namespaced: Any) -> frozenset[str]:
    """Namespaced identifiers from emails, logins and other ids (`github="octocat"`)."""
    out = {f"email:{e}" for e in map(email, emails) if e}
    out |= {f"login:{str(v).strip().lower()}" for v in logins if isinstance(v, str) and v}
    for space, values in namespaced.items():
        for value in values if isinstance(values, list | tuple | set | frozenset) else [values]:
            if isinstance(value, str) and value:
                out.add(f"{space}:{value.strip().lower()}")
    return frozenset(out)
