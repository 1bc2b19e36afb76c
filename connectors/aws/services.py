"""The registry of AWS services that the connector reads, declared by each service module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from collector.model import Resource, Scope
from connectors.aws.session import AwsSession

Fetch = Callable[[AwsSession, Scope, str], Iterator[Resource]]


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    kinds: tuple[str, ...]
    regional: bool
    fetch: Fetch


SERVICES: list[Service] = []


def service(name: str, *, kinds: tuple[str, ...], regional: bool) -> Callable[[Fetch], Fetch]:
    """Declare a generator of resources. Global ones are called once with the first region."""

    def register(fetch: Fetch) -> Fetch:
        SERVICES.append(Service(name, kinds, regional, fetch))
        return fetch

    return register
