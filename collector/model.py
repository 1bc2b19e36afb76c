"""The small shared types that connectors, checks and the engine all speak.

Connectors and checks may import this module and nothing else from `collector`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ResultStatus = Literal["pass", "fail", "error", "not_applicable"]

# A resource's data may carry this key: field name -> why that field could not be fetched.
# Checks that need such a field report `error` instead of judging incomplete data.
FETCH_ERRORS = "_errors"

# A collection error whose region is this covers the named kinds in every region.
ALL_REGIONS = "*"


@dataclass(frozen=True, slots=True)
class Resource:
    """One configuration item as the provider returned it (after normalisation)."""

    kind: str
    key: str
    scope: str
    region: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Scope:
    """The unit that scope checks judge as a whole: an account, subscription, project, tenant.

    `kinds` are the resource kinds the connector lists in full in this scope: one that yields
    no resource and no CollectionError there has none, and its resource checks are
    `not_applicable` ("no aws.ec2.volume in 123456789012"). A kind left out, or whose listing
    failed, has no such result: nothing was judged.
    """

    provider: str
    id: str
    key: str
    kinds: tuple[str, ...] = ()

    def resource(
        self, kind: str, key: str, data: dict[str, Any], region: str = "global"
    ) -> Resource:
        return Resource(kind=kind, key=key, scope=self.id, region=region, data=data)

    def error(
        self, service: str, region: str, kinds: tuple[str, ...], message: str
    ) -> CollectionError:
        return CollectionError(
            scope=self.id, region=region, service=service, kinds=kinds, message=message
        )


@dataclass(frozen=True, slots=True)
class CollectionError:
    """A service that could not be read in one region. The run goes on without it.

    `kinds` are the resource kinds the failed call would have produced: their previous
    versions are kept (not treated as deleted) and checks on them report `error`. With `key`,
    the error is about that one resource (it could not be stored or judged): only its previous
    version is kept, its checks report `error` on it, and scope checks using its kind too.
    """

    scope: str
    region: str
    service: str
    kinds: tuple[str, ...]
    message: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    status: ResultStatus
    reason: str


def passed(reason: str) -> Verdict:
    return Verdict("pass", reason)


def failed(reason: str) -> Verdict:
    return Verdict("fail", reason)


def not_applicable(reason: str) -> Verdict:
    return Verdict("not_applicable", reason)


def errored(reason: str) -> Verdict:
    return Verdict("error", reason)
