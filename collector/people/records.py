"""The derived source's evidence: a record per person and per account, each citing the
digests of the source evidence it was read from. Checks judge these records (checks/people)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import CollectionError, Resource, Scope
from collector.people.join import Account, Joined, Person

SOURCE = "annexa-people"
SCOPE = Scope(provider="people", id=SOURCE, key="annexa:people")
PERSON = "people.person"
ACCOUNT = "people.account"


def person_key(email: str) -> str:
    return f"person:{email}"


def items(joined: Joined) -> Iterator[Scope | Resource | CollectionError]:
    """The derived run's stream. Each account record's region is its source, so that a source
    that could not be read keeps its earlier records in force (and its checks say `error`)."""
    yield SCOPE
    authoritative = joined.reads[joined.authoritative]
    if authoritative.unread:
        yield CollectionError(SOURCE, "*", joined.authoritative, (PERSON, ACCOUNT),
                              f"the authoritative identity provider: {authoritative.unread}")
        return
    for read in joined.reads.values():
        if read.unread:
            yield CollectionError(SOURCE, read.source, read.source, (ACCOUNT,), read.unread)
    for email in sorted(joined.people):
        person = joined.people[email]
        yield Resource(PERSON, person_key(email), SOURCE, joined.authoritative,
                       person_record(person))
    seen: set[str] = set()
    for account in sorted(joined.accounts, key=lambda a: (a.source, a.identity.key)):
        key = account.identity.key
        if key in seen:  # two sources of one kind may name an account alike
            key = f"{key}#{account.source}"
        seen.add(key)
        yield Resource(ACCOUNT, key, SOURCE, account.source,
                       account_record(account, joined.people.get(account.person or ""),
                                      joined.authoritative))


def _account_summary(account: Account) -> dict[str, Any]:
    ident = account.identity
    return {"source": account.source, "key": ident.key, "kind": ident.kind,
            "label": ident.label, "active": ident.active, "why_active": ident.why_active,
            "privileged": ident.privileged, "privileges": list(ident.privileges),
            "mfa": ident.mfa, "evidence": account.digest, "linked_by": account.linked_by,
            "unread": account.unread}


def person_record(person: Person) -> dict[str, Any]:
    return {"email": person.email, "status": person.facts.status,
            "status_changed": person.facts.status_changed,
            "idp": {"source": person.idp.source, "key": person.idp.identity.key,
                    "evidence": person.idp.digest},
            "mfa": person.mfa,
            "accounts": sorted((_account_summary(a) for a in person.accounts),
                               key=lambda a: (a["source"], a["key"]))}


def account_record(account: Account, person: Person | None,
                   authoritative: str) -> dict[str, Any]:
    exception = account.exception
    return {
        **_account_summary(account),
        "human": account.identity.human,
        "identity_provider_record": account.source == authoritative
                                    and account.identity.person is not None,
        "candidates": account.candidates,
        "person": None if account.person is None else {
            "email": account.person, "known": person is not None,
            "status": person.facts.status if person else None,
            "gone": person.facts.gone if person else None,
            "status_changed": person.facts.status_changed if person else None,
            "identity_provider": authoritative,
            "evidence": person.idp.digest if person else None,
            "mfa": person.mfa if person else None,
        },
        "exception": None if exception is None else {
            "owner": exception.owner, "reason": exception.reason,
            "expires": exception.expires.isoformat(), "non_human": exception.non_human},
    }
