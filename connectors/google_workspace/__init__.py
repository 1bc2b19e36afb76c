"""The Google Workspace connector: streams one customer's users, org units, admin roles and
role assignments (Admin SDK Directory API v1) and its security settings (Cloud Identity Policy
API) as resources, over plain HTTPS with google-auth credentials that impersonate an admin
through domain-wide delegation. It never judges."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import requests
from google.oauth2.service_account import Credentials

from collector.model import CollectionError, Resource, Scope
from connectors.google_workspace.credentials import (
    DIRECTORY_SCOPES,
    POLICY_SCOPES,
    CredentialsUnavailable,
    delegated,
)
from connectors.google_workspace.directory import (
    CUSTOMER,
    ORG_UNIT,
    ROLE,
    ROLE_ASSIGNMENT,
    USER,
    SourceUnreachable,
    customer_scope,
    role_assignments,
    roles,
    users_then_org_units,
)
from connectors.google_workspace.policies import POLICY, policies
from connectors.google_workspace.settings import Settings
from connectors.http import HttpClient, Observer, RateLimits, pinned_session, reasons
from connectors.http.auth import GoogleCredentialsAuth
from connectors.streams import interleave

__all__ = ["KINDS", "CredentialsUnavailable", "Settings", "SourceUnreachable", "collect"]

KINDS = (CUSTOMER, ORG_UNIT, USER, ROLE, ROLE_ASSIGNMENT, POLICY)
ADMIN_API = "https://admin.googleapis.com"
CLOUD_IDENTITY_API = "https://cloudidentity.googleapis.com"
# The Admin SDK says "slow down" with a 403 and one of these reasons, and no Retry-After
# (https://developers.google.com/workspace/admin/directory/v1/limits); quotaExceeded is its
# limit of concurrent requests. Any other 403 is a denial.
QUOTA_REASONS = frozenset({"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"})


def quota_refusal(response: requests.Response) -> bool:
    return response.status_code == 403 and bool(reasons(response) & QUOTA_REASONS)


def api_client(settings: Settings, api: str, service: str, credentials: Credentials,
               observer: Observer | None) -> HttpClient:
    # Token requests go through the same pinned session as the calls, so the key file's
    # token_uri is reached with the source's ca_bundle too. HttpClient renews a token that
    # the API refuses with 401 once, and counts every call for the observer.
    session = pinned_session(settings.ca_bundle)
    return HttpClient(settings.api_endpoint or api, service=service, settings=settings,
                      auth=GoogleCredentialsAuth(credentials, session),
                      observer=observer, limits=RateLimits(throttled=quota_refusal),
                      session=session)


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """Yield the customer's Scope and record first, then its users and org units, roles, role
    assignments and security policies as the listings run side by side, with a
    CollectionError for each listing that failed. Raises SourceUnreachable when the customer
    itself cannot be read, CredentialsUnavailable when there is no service account."""
    for_directory, for_policies = delegated(settings, DIRECTORY_SCOPES, POLICY_SCOPES)
    directory = api_client(settings, ADMIN_API, "admin", for_directory, observer)
    policy_api = api_client(settings, CLOUD_IDENTITY_API, "cloudidentity", for_policies, observer)
    scope, customer = customer_scope(directory, settings.customer, KINDS)
    yield scope
    yield customer
    tasks = [partial(users_then_org_units, directory, scope), partial(roles, directory, scope),
             partial(role_assignments, directory, scope), partial(policies, policy_api, scope)]
    yield from interleave(tasks, settings.workers)
