"""People joined across sources, from the evidence already in the store.

The authoritative identity provider's accounts define the people. Accounts in every other
source link to a person by a shared identifier (email, login, an IdP object id), or by the
mapping file; accounts of other identity providers link first and lend the person their
identifiers, so that an Azure role assignment to an Entra object id finds its Okta person.
What links to nobody is an orphan, unless the mapping file excuses it.

Each source is read as of its latest sealed run. A source whose last collection failed is
`unread`: its accounts are those of its last run that read them, each marked unread with the
reason, so that every verdict on them is `error` (a failure stays, on its earlier evidence) and
none is judged again from stale data. A run that could not read one identity kind (IAM
Identity Center denied, IAM users read) is unread for that kind alone: its accounts come from
the last run that read it, marked unread, and the kinds it did read are judged afresh."""

from __future__ import annotations

import json
import marshal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import Connection

from collector.chain import RUNS, run_errors
from collector.people import adapters
from collector.people.identities import ADAPTERS, IDP_KINDS, Identity, PersonFacts
from collector.people.mapping import Exception_, Mapping
from collector.store import BLOBS, VERSIONS, decompress
from connectors.spool import private_database

# Linked accounts go to the spool in batches of this many rows.
_SPOOL_BATCH = 1000


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

    def summary(self) -> dict[str, Any]:
        """The account as its person's record lists it."""
        ident = self.identity
        return {"source": self.source, "key": ident.key, "kind": ident.kind,
                "label": ident.label, "active": ident.active, "why_active": ident.why_active,
                "privileged": ident.privileged, "privileges": list(ident.privileges),
                "mfa": ident.mfa, "evidence": self.digest, "linked_by": self.linked_by,
                "unread": self.unread}

    def details(self, authoritative: str) -> dict[str, Any]:
        """What the account's own record says beyond its summary (its person's facts aside)."""
        exception = self.exception
        return {
            "human": self.identity.human,
            "identity_provider_record": self.source == authoritative
                                        and self.identity.person is not None,
            "candidates": self.candidates,
            "exception": None if exception is None else {
                "owner": exception.owner, "reason": exception.reason,
                "expires": exception.expires.isoformat(), "non_human": exception.non_human},
        }


@dataclass(slots=True)
class Person:
    """A person as the authoritative identity provider's first account of them says."""

    email: str
    facts: PersonFacts
    idp_source: str
    idp_key: str
    idp_evidence: str  # the digest of that account's evidence
    mfa: bool | None


class LinkedAccount(NamedTuple):
    source: str
    key: str
    first: bool  # the first account of its key, in (source, key) order
    person: str | None
    summary: dict[str, Any]
    details: dict[str, Any]


class _Spool:
    """The linked accounts, kept in a private temporary SQLite file (gone when closed) in
    the order they were linked, to be read back sorted: by source and key, or grouped by
    person. A join holds a small index per person in memory, whatever the accounts."""

    def __init__(self) -> None:
        self._db = private_database()
        self._db.execute("CREATE TABLE accounts (seq INTEGER PRIMARY KEY, source TEXT, "
                         "key TEXT, person TEXT, member INTEGER, body BLOB)")
        self._rows: list[tuple[str, str, str | None, bool, bytes]] = []
        self._indexed = False

    def put(self, account: Account, member: bool, authoritative: str) -> None:
        # marshal: the spool is read back by this process alone, and it is several times
        # faster than JSON both ways.
        self._rows.append((account.source, account.identity.key, account.person, member,
                           marshal.dumps((account.summary(), account.details(authoritative)))))
        if len(self._rows) >= _SPOOL_BATCH:
            self.flush()

    def flush(self) -> None:
        with self._db:
            self._db.executemany("INSERT INTO accounts (source, key, person, member, body) "
                                 "VALUES (?, ?, ?, ?, ?)", self._rows)
        self._rows.clear()

    def _index(self) -> None:
        # Built once every account is in: the reads then walk an index instead of sorting
        # rows, bodies and all.
        if not self._indexed:
            with self._db:
                self._db.execute("CREATE INDEX by_key ON accounts (source, key, seq)")
                self._db.execute("CREATE INDEX by_person ON accounts (person, source, key, seq)"
                                 " WHERE member")
            self._indexed = True

    def by_person(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(person, the summaries of their accounts by source and key), by person."""
        self._index()
        rows = self._db.execute("SELECT person, body FROM accounts INDEXED BY by_person "
                                "WHERE member ORDER BY person, source, key, seq")
        for person, group in groupby(rows, key=lambda row: row[0]):
            yield person, [marshal.loads(body)[0] for _, body in group]

    def by_key(self) -> Iterator[LinkedAccount]:
        self._index()
        # Accounts that share their key with another source's are few: only theirs are held.
        shared = {key for (key,) in self._db.execute(
            "SELECT key FROM accounts GROUP BY key HAVING COUNT(*) > 1")}
        seen: set[str] = set()
        rows = self._db.execute("SELECT source, key, person, body FROM accounts INDEXED BY "
                                "by_key ORDER BY source, key, seq")
        for source, key, person, body in rows:
            first = key not in seen
            if key in shared:
                seen.add(key)
            summary, details = marshal.loads(body)
            yield LinkedAccount(source, key, first, person, summary, details)

    def close(self) -> None:
        self._db.close()


@dataclass
class Joined:
    authoritative: str
    reads: dict[str, SourceRead]
    people: dict[str, Person]
    _spool: _Spool

    def people_accounts(self) -> Iterator[tuple[Person, list[dict[str, Any]]]]:
        """Each person, by email, with the summaries of their accounts (the identity
        provider's own included) by source and key."""
        for email, summaries in self._spool.by_person():
            yield self.people[email], summaries

    def accounts(self) -> Iterator[LinkedAccount]:
        """Every account of every source read, the IdP's own included, by source and key."""
        return self._spool.by_key()

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> Joined:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _latest_run(conn: Connection, source: str) -> Any:
    """The source's last sealed run."""
    return conn.execute(_sealed(source).limit(1)).first()


def _sealed(source: str) -> sa.Select:
    return (sa.select(RUNS.c.id, RUNS.c.seq, RUNS.c.status, RUNS.c.message)
            .where(RUNS.c.source == source, RUNS.c.seq.is_not(None))
            .order_by(RUNS.c.id.desc()))


def _last_readings(conn: Connection, source: str, kinds: Iterable[str]) -> dict[str, int]:
    """Each of `kinds` with the id of the source's last run that read it (those that no run
    read are left out). Each run's errors are read once, newest run first."""
    wanted, found = set(kinds), dict[str, int]()
    ran = _sealed(source).where(RUNS.c.status.not_in(("failed", "interrupted")))
    for run in conn.execute(ran):
        unread = _unread_kinds(conn, source, run.id)
        for kind in wanted - unread.keys():
            found[kind] = run.id
        wanted &= unread.keys()
        if not wanted:
            break
    return found


def _unread(source: str, run: Any) -> str | None:
    """Why nothing of the source can be read at `run`, or None."""
    if run is None:
        return f"{source} has not been collected yet"
    if run.status in ("failed", "interrupted"):
        return f"the last collection of {source} was {run.status}: {run.message or 'no message'}"
    return None


def _unread_kinds(conn: Connection, source: str, run_id: int) -> dict[str, str]:
    """The identity kinds that the run could not read, each with why."""
    out: dict[str, str] = {}
    for err in run_errors(conn, run_id):
        for kind in sorted(set(json.loads(err["kinds"])) & ADAPTERS.keys()):
            out.setdefault(kind, f"the last collection of {source} could not read "
                                 f"{err['service']} in {err['region']}: {err['message']}")
    return out


def _reads(conn: Connection, source: str, run: Any, authoritative: bool
           ) -> tuple[str | None, list[tuple[int, str | None, list[str]]]]:
    """Why the source is not wholly read now (or None), and what to read of it: (run id, why
    those kinds are unread now or None, kinds). A kind the last run could not read comes
    from the last run that read it, unread, while the kinds it read are judged afresh; the
    authoritative IdP is read whole or not at all."""
    kinds = sorted(ADAPTERS)
    unread = _unread(source, run)
    missing = {} if unread is not None else _unread_kinds(conn, source, run.id)
    if unread is None and missing:
        unread = next(iter(missing.values()))
    if unread is None:
        return None, [(run.id, None, kinds)]
    if authoritative:
        return unread, []
    if missing:  # the run read the rest
        out = [(run.id, None, [k for k in kinds if k not in missing])]
        why = missing
    else:
        out, why = [], dict.fromkeys(kinds, unread)
    earlier: dict[tuple[int, str], list[str]] = {}
    for kind, run_id in sorted(_last_readings(conn, source, why).items()):
        earlier.setdefault((run_id, why[kind]), []).append(kind)
    out += [(run_id, reason, read) for (run_id, reason), read in earlier.items()]
    return unread, out


def identities(conn: Connection, source: str, run_id: int,
               kinds: Iterable[str] | None = None) -> Iterator[tuple[Identity, str]]:
    """(identity, digest of the version it was read from) of every identity kind (or of
    those of `kinds`) valid at the run. A version whose body was pruned by retention has
    nothing left to read."""
    rows = conn.execute(
        sa.select(VERSIONS.c.kind, VERSIONS.c.key, VERSIONS.c.digest, BLOBS.c.body)
        .join(BLOBS, BLOBS.c.digest == VERSIONS.c.digest)
        .where(VERSIONS.c.source == source,
               VERSIONS.c.kind.in_(sorted(ADAPTERS if kinds is None else kinds)),
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
    """The people and their linked accounts; close the result (its spool) when done.

    Two passes keep memory flat: the authoritative IdP's accounts make the people and an
    index of their identifiers; then the other sources are streamed, the accounts of other
    IdPs first (they lend their identifiers), each account linked and spooled at once."""
    adapters.load_all()
    reads: dict[str, SourceRead] = {}
    # What is read of each source: (run id, why unread now or None, kinds).
    runs: dict[str, list[tuple[int, str | None, list[str]]]] = {}
    for source in dict.fromkeys([authoritative, *sources]):
        run = _latest_run(conn, source)
        unread, read = _reads(conn, source, run, source == authoritative)
        reads[source] = SourceRead(source, run.id if run else None, run.seq if run else None,
                                   run.status if run else None, unread)
        if read:
            runs[source] = read
    people: dict[str, Person] = {}
    joined = Joined(authoritative, reads, people, _Spool())
    if authoritative not in runs:  # nobody to link anything to: the run says so, alone
        return joined
    try:
        by_identifier = _people(conn, joined, runs[authoritative][0][0])
        others = [(s, read) for s, read in runs.items() if s != authoritative]
        for first in (True, False):
            for source, read in others:
                for run_id, unread, kinds in read:
                    wanted = [k for k in kinds if (k in IDP_KINDS) == first]
                    if not wanted:
                        continue
                    for identity, digest in identities(conn, source, run_id, wanted):
                        account = Account(source, identity, digest, unread=unread)
                        _link(account, people, by_identifier, mapping)
                        joined._spool.put(account, account.person in people, authoritative)
        joined._spool.flush()
    except BaseException:
        joined.close()
        raise
    return joined


def _people(conn: Connection, joined: Joined, run_id: int) -> dict[str, str]:
    """Read the authoritative IdP's accounts into `joined`'s people and spool; return the
    index of the people's identifiers (an identifier that two people share goes to the
    later of them)."""
    people, authoritative = joined.people, joined.authoritative
    own: dict[str, set[str]] = {}  # each person's identifiers, only while the index is built
    for identity, digest in identities(conn, authoritative, run_id):
        account = Account(authoritative, identity, digest)
        facts = identity.person
        if facts is not None:
            account.person, account.linked_by = facts.email, "identity provider"
            if facts.email not in people:
                people[facts.email] = Person(facts.email, facts, authoritative, identity.key,
                                             digest, identity.mfa)
                own[facts.email] = set(identity.identifiers) | set(facts.aliases)
            else:
                own[facts.email] |= identity.identifiers
        joined._spool.put(account, facts is not None, authoritative)
    return {identifier: email for email, identifiers in own.items()
            for identifier in identifiers}


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
    if account.person in people and ident.kind in IDP_KINDS:
        # An identifier already known stays with its person: the first to claim it.
        for identifier in ident.identifiers:
            by_identifier.setdefault(identifier, account.person)
