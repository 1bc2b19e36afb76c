"""What the connector lists besides users, declared as data: each listing's call, the kind it
makes, and the policies with their rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from collector.model import FETCH_ERRORS, Resource, Scope
from connectors.http import HttpClient, HttpError
from connectors.okta.api import objects, resources
from connectors.okta.users import fatal

POLICY = "okta.policy"
AUTHENTICATOR = "okta.authenticator"
APP = "okta.app"
API_TOKEN = "okta.api_token"
ZONE = "okta.zone"
RULES = "rules"
# The global session (sign-on), password, authenticator enrolment and app sign-in
# (authentication) policies.
POLICY_TYPES = ("OKTA_SIGN_ON", "PASSWORD", "MFA_ENROLL", "ACCESS_POLICY")
APPS_PAGE = 200
# A password policy's rules sit under `settings.password`, a field name the evidence store
# redacts wherever it appears (it is a secret in most APIs): they are kept under this name.
PASSWORD_SETTINGS = "passwordPolicy"


@dataclass(frozen=True)
class Listing:
    name: str  # the service named in a collection error
    kinds: tuple[str, ...]
    fetch: Callable[[HttpClient, Scope], Iterator[Resource]]


def policies(policy_type: str, api: HttpClient, scope: Scope) -> Iterator[Resource]:
    """The policies of one type, each with its rules (one call per policy): a policy says
    whom it covers, its rules what is required of them."""
    for page in objects(api, "/api/v1/policies", "policies.list", {"type": policy_type}):
        for policy in page:
            settings = policy.get("settings")
            if isinstance(settings, dict) and "password" in settings:
                settings[PASSWORD_SETTINGS] = settings.pop("password")
            try:
                policy[RULES] = [rule for rules in objects(
                    api, f"/api/v1/policies/{policy['id']}/rules", "policies.rules.list")
                    for rule in rules]
            except HttpError as exc:
                if fatal(exc):
                    raise
                policy.setdefault(FETCH_ERRORS, {})[RULES] = str(exc)
            yield scope.resource(POLICY, f"okta:policy:{policy['id']}", policy)


def _plain(kind: str, path: str, operation: str, api: HttpClient, scope: Scope,
           **params: object) -> Iterator[Resource]:
    yield from resources(scope, kind, objects(api, path, operation, params or None))


LISTINGS: tuple[Listing, ...] = (
    *(Listing(f"policies:{t}", (POLICY,), partial(policies, t)) for t in POLICY_TYPES),
    Listing("authenticators", (AUTHENTICATOR,),
            partial(_plain, AUTHENTICATOR, "/api/v1/authenticators", "authenticators.list")),
    Listing("apps", (APP,), partial(_plain, APP, "/api/v1/apps", "apps.list", limit=APPS_PAGE)),
    Listing("api-tokens", (API_TOKEN,),
            partial(_plain, API_TOKEN, "/api/v1/api-tokens", "apiTokens.list")),
    Listing("zones", (ZONE,), partial(_plain, ZONE, "/api/v1/zones", "zones.list")),
)
