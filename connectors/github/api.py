"""GitHub's REST API v3 and GraphQL API for one source: HttpClients with the source's
credentials, and what GitHub means by "slow down"."""

from __future__ import annotations

import json
import os

import requests

from connectors.github.auth import InstallationAuth
from connectors.github.settings import Settings
from connectors.http import Auth, HttpClient, Observer, RateLimits, error_detail, pinned_session
from connectors.http.auth import HeaderAuth

SERVICE = "github"
# https://docs.github.com/en/rest/about-the-rest-api/api-versions
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
# GitHub asks to wait at least a minute after a secondary limit that names no time
# (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api).
SECONDARY_WAIT = 60.0


class CredentialsUnavailable(RuntimeError):
    """The source names a token variable that is not set."""


def throttled(response: requests.Response) -> bool:
    """GitHub's rate limits, which are not denials: a 403 or 429 with Retry-After, with
    X-RateLimit-Remaining 0 (the primary limit), or whose message names a rate limit (the
    secondary limits); and GraphQL's 200 whose errors say RATE_LIMITED."""
    status = response.status_code
    if status in (403, 429):
        if response.headers.get("Retry-After") or response.headers.get(
                "X-RateLimit-Remaining") == "0":
            return True
        return "rate limit" in error_detail(response)[1].lower()
    if status == 200 and b"RATE_LIMITED" in response.content:
        try:
            errors = json.loads(response.content).get("errors")
        except (ValueError, AttributeError, RecursionError):
            return False
        return isinstance(errors, list) and any(
            isinstance(e, dict) and e.get("type") == "RATE_LIMITED" for e in errors)
    return False


LIMITS = RateLimits(remaining="X-RateLimit-Remaining", reset="X-RateLimit-Reset",
                    reset_format="epoch", throttled=throttled, min_wait=SECONDARY_WAIT)


class GitHub:
    """`rest` under api_url, `graphql` at the GraphQL endpoint, sharing one session and one
    set of credentials."""

    def __init__(self, settings: Settings, observer: Observer | None = None) -> None:
        self.session = pinned_session(settings.ca_bundle)
        self.auth = _auth(settings, self.session, observer)
        self.rest = HttpClient(settings.api_url, service=SERVICE, settings=settings,
                               auth=self.auth, observer=observer, limits=LIMITS,
                               session=self.session, headers=HEADERS)
        # The client's base ends in "/", which GitHub's GraphQL endpoint does not take.
        root, _, self.graphql_path = settings.graphql_url.rpartition("/")
        self.graphql = HttpClient(root, service=SERVICE, settings=settings, auth=self.auth,
                                  observer=observer, limits=LIMITS, session=self.session,
                                  headers=HEADERS)


def _auth(settings: Settings, session: requests.Session, observer: Observer | None) -> Auth:
    if settings.uses_app:
        assert settings.private_key_file is not None and settings.installation_id is not None
        apps = HttpClient(settings.api_url, service=SERVICE, settings=settings,
                          observer=observer, limits=LIMITS, session=session, headers=HEADERS)
        return InstallationAuth(settings.app_id or 0, settings.private_key_file,
                                settings.installation_id, apps)
    token = os.environ.get(settings.token_env, "").strip()
    if not token:
        raise CredentialsUnavailable(
            f"{settings.token_env} is not set: a fine-grained token (or a GitHub App's "
            "app_id, private_key_file and installation_id) is needed")
    return HeaderAuth("Authorization", f"Bearer {token}")
