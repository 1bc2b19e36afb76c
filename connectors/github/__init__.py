"""The GitHub connector: one organisation's settings and Actions workflow permissions, its
members and outside collaborators, and its repositories with their default branch's
protection (classic rule and rulesets), secret scanning, push protection and Dependabot, from
the REST API v3 and, where one query replaces several calls per repository, GraphQL. Works
against github.com and GitHub Enterprise Server. It never judges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

from collector.model import CollectionError, Resource, Scope
from connectors.github.api import CredentialsUnavailable, GitHub
from connectors.github.organization import (
    COLLABORATOR,
    MEMBER,
    ORGANIZATION,
    SourceUnreachable,
    members,
    organization,
)
from connectors.github.repositories import REPOSITORY, repositories_then_collaborators
from connectors.github.settings import Settings
from connectors.http import Observer
from connectors.streams import interleave

__all__ = ["KINDS", "CredentialsUnavailable", "Settings", "SourceUnreachable", "collect"]

KINDS = (ORGANIZATION, REPOSITORY, MEMBER, COLLABORATOR)


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """Yield the organisation's Scope and record first, then its members, repositories and
    outside collaborators as the listings run side by side, with a CollectionError for each
    listing that failed. Raises SourceUnreachable when the organisation cannot be read (a
    revoked token, an organisation it cannot see), CredentialsUnavailable when no token is
    set."""
    github = GitHub(settings, observer)
    scope, org = organization(github, settings.organization)
    # Every listing errors its kinds when it fails, so a kind with no resource is empty.
    scope = replace(scope, kinds=KINDS)
    yield scope
    yield org
    tasks: list[Callable[[], Iterator[Resource | CollectionError]]] = [
        partial(members, github, scope), partial(repositories_then_collaborators, github, scope)]
    yield from interleave(tasks, settings.workers)
