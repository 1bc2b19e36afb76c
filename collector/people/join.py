"""People joined across sources, from the evidence already in the store.

The authoritative identity provider's accounts define the people. Accounts in every other
source link to a person by a shared identifier (email, login, an IdP object id), or by the
mapping file; accounts of other identity providers link first and lend the person their
identifiers, so that an Azure role assignment to an Entra object id finds its Okta person.
What links to nobody is an orphan, unless the mapping file excuses it.

Each source is read as of its latest sealed run. A source whose last collection failed, or
whose run could not read an identity kind, is `unread`: its accounts are those of its last run
that read them, each marked unread with the reason, so that every verdict on them is `error`
(a failure stays, on its earlier evidence) and none is judged again from stale data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from collector.chain import RUNS, run_errors
from collector.people import adapters
from collector.people.identities import ADAPTERS, IDP_KINDS, Identity, PersonFacts
from collector.people.mapping import Exception_, Mapping
from collector.store import BLOBS, VERSIONS, decompress


@dataclass
class SourceRead:
    source: str
    run_id: int | None
    seq: int | None
    status: str | None
    unread: str | None = None  # why this source's identities could not be read now


@dataclass(slots=True)
class Account:
    source: str
    identity: Identity
    digest: str
    person: str | None = None  # the email of its person
    linked_by: str | None = None  # "identity provider", "email alice@...", "mapping file"
    candidates: list[str] = field(default_factory=list)  # people it matches when several
    exception: Exception_ | None = None
    unread: str | None = None  # why its source could not be read now (it is from an earlier run)


@dataclass
class Person:
    email: str
    facts: PersonFacts
    idp: Account
    identifiers: set[str]
    accounts: list[Account] = field(default_factory=list)

    @property
    def mfa(self) -> bool | None:
        return self.idp.identity.mfa


@dataclass
class Joined:
    authoritative: str
    reads: dict[str, SourceRead]
    people: dict[str, Person]
    accounts: list[Account]  # every account of every source read, the IdP's own included


def _latest_run(conn: Connection, source: str, *, read: bool = False) -> Any:
    """The source's last sealed run; with `read`, the last that read its identity kinds."""
    query = (sa.select(RUNS.c.id, RUNS.c.seq, RUNS.c.status, RUNS.c.message)
             .where(RUNS.c.source == source, RUNS.c.seq.is_not(None))
             .order_by(RUNS.c.id.desc()))
    if not read:
        return conn.execute(query.limit(1)).first()
    for run in conn.execute(query.where(RUNS.c.status.not_in(("failed", "interrupted")))):
        if _unread(conn, source, run) is None:
            return run
    return None


def _unread(conn: Connection, source: str, run: Any) -> str | None:
    if run is None:
        return f"{source} has not been collected yet"
    if run.status in ("failed", "interrupted"):
        return f"the last collection of {source} was {run.status}: {run.message or 'no message'}"
    for err in run_errors(conn, run.id):
        if set(json.loads(err["kinds"])) & ADAPTERS.keys():
            return (f"the last collection of {source} could not read {err['service']} in "
                    f"{err['region']}: {err['message']}")
    return None


def identities(conn: Connection, source: str, run_id: int
               ) -> Iterator[tuple[Identity, str]]:
    """(identity, digest of the version it was read from) of every identity kind valid at
    the run. A version whose body was pruned by retention has nothing left to read."""
    rows = conn.execute(
        sa.select(VERSIONS.c.kind, VERSIONS.c.key, VERSIONS.c.digest, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == source, VERSIONS.c.kind.in_(sorted(ADAPTERS)),
               VERSIONS.c.valid_from_run <= run_id,
               sa.or_(VERSIONS.c.valid_to_run.is_(None), VERSIONS.c.valid_to_run > run_id))
        .order_by(VERSIONS.c.kind, VERSIONS.c.key)
        .execution_options(yield_per=2000))
    for kind, key, digest, body in rows:
        if body is None:
            continue
        data = json.loads(decompress(body))
        for identity in ADAPTERS[kind](key, data):
            yield identity, digest


def join(conn: Connection, authoritative: str, sources: Iterable[str],
         mapping: Mapping) -> Joined:
    adapters.load_all()
    reads: dict[str, SourceRead] = {}
    found: dict[str, list[Account]] = {}
    for source in dict.fromkeys([authoritative, *sources]):
        run = _latest_run(conn, source)
        read = SourceRead(source, run.id if run else None, run.seq if run else None,
                          run.status if run else None, _unread(conn, source, run))
        reads[source] = read
        if read.unread is None and run is not None:
            found[source] = [Account(source, identity, digest)
                             for identity, digest in identities(conn, source, run.id)]
        elif source != authoritative and (earlier := _latest_run(conn, source, read=True)):
            found[source] = [Account(source, identity, digest, unread=read.unread)
                             for identity, digest in identities(conn, source, earlier.id)]
    people: dict[str, Person] = {}
    for account in found.get(authoritative, []):
        facts = account.identity.person
        if facts is None:
            continue
        account.person, account.linked_by = facts.email, "identity provider"
        person = people.get(facts.email)
        if person is None:
            people[facts.email] = Person(facts.email, facts, account,
                                         set(account.identity.identifiers) | set(facts.aliases))
        else:
            person.identifiers |= account.identity.identifiers
        people[facts.email].accounts.append(account)
    by_identifier = _index(people)
    others = [a for s, accounts in found.items() if s != authoritative for a in accounts]
    # Other identity providers first: their accounts lend the person their identifiers.
    for account in sorted(others, key=lambda a: a.identity.kind not in IDP_KINDS):
        _link(account, people, by_identifier, mapping)
    accounts = [a for accounts in found.values() for a in accounts]
    return Joined(authoritative, reads, people, accounts)


def _index(people: dict[str, Person]) -> dict[str, str]:
    return {identifier: email for email, person in people.items()
            for identifier in person.identifiers}


def _link(account: Account, people: dict[str, Person], by_identifier: dict[str, str],
          mapping: Mapping) -> None:
    ident = account.identity
    mapped = mapping.link(account.source, ident.key, ident.label)
    if mapped is not None:
        account.person, account.linked_by = mapped, "mapping file"
    else:
        matches = sorted({by_identifier[i] for i in ident.identifiers if i in by_identifier})
        if len(matches) == 1:
            shared = sorted(i for i in ident.identifiers if by_identifier.get(i) == matches[0])
            account.person, account.linked_by = matches[0], shared[0].replace(":", " ", 1)
        else:
            account.candidates = matches
    account.exception = mapping.exception(account.source, ident.key, ident.label)
    person = people.get(account.person) if account.person else None
    if person is None:
        return
    person.accounts.append(account)
    if ident.kind in IDP_KINDS:
        for identifier in ident.identifiers - person.identifiers:
            person.identifiers.add(identifier)
            by_identifier.setdefault(identifier, person.email)
