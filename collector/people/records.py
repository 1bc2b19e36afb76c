"""The derived source's evidence: a record per person and per account, each citing the
digests of the source evidence it was read from. Checks judge these records (checks/people)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import CollectionError, Resource, Scope
from collector.people.join import Joined, LinkedAccount, Person

SOURCE = "annexa-people"
SCOPE = Scope(provider="people", id=SOURCE, key="annexa:people")
PERSON = "people.person"
ACCOUNT = "people.account"


def person_key(email: str) -> str:
    return f"person:{email}"


def items(joined: Joined) -> Iterator[Scope | Resource | CollectionError]:
    """The derived run's stream, one record built at a time. Each account record's region is
    its source, so that a source that could not be read keeps its earlier records in force
    (and its checks say `error`)."""
    yield SCOPE
    authoritative = joined.reads[joined.authoritative]
    if authoritative.unread:
        yield CollectionError(SOURCE, "*", joined.authoritative, (PERSON, ACCOUNT),
                              f"the authoritative identity provider: {authoritative.unread}")
        return
    for read in joined.reads.values():
        if read.unread:
            yield CollectionError(SOURCE, read.source, read.source, (ACCOUNT,), read.unread)
    for person, accounts in joined.people_accounts():
        yield Resource(PERSON, person_key(person.email), SOURCE, joined.authoritative,
                       person_record(person, accounts))
    for account in joined.accounts():
        # Two sources of one kind may name an account alike.
        key = account.key if account.first else f"{account.key}#{account.source}"
        yield Resource(ACCOUNT, key, SOURCE, account.source,
                       account_record(account, joined.people.get(account.person or ""),
                                      joined.authoritative))


def person_record(person: Person, accounts: list[dict[str, Any]]) -> dict[str, Any]:
    """`accounts`: the summaries of the person's accounts, by source and key."""
    return {"email": person.email, "status": person.facts.status,
            "status_changed": person.facts.status_changed,
            "idp": {"source": person.idp_source, "key": person.idp_key,
                    "evidence": person.idp_evidence},
            "mfa": person.mfa, "accounts": accounts}


def account_record(account: LinkedAccount, person: Person | None,
                   authoritative: str) -> dict[str, Any]:
    return {
        **account.summary, **account.details,
        "person": None if account.person is None else {
            "email": account.person, "known": person is not None,
            "status": person.facts.status if person else None,
            "gone": person.facts.gone if person else None,
            "status_changed": person.facts.status_changed if person else None,
            "identity_provider": authoritative,
            "evidence": person.idp_evidence if person else None,
            "mfa": person.mfa if person else None,
        },
    }
