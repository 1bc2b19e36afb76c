"""What the connector lists, declared as data: each listing's Graph call, the resource kind
it makes and how an object becomes a key. Users (with the join of their registration
details) are in users.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from collector.model import Resource, Scope
from connectors.entra import users
from connectors.entra.graph import MAX_PAGE, Graph

# Credentials are listed with their dates; Graph never returns a secret's value in a listing.
APPLICATION_FIELDS = ("id", "appId", "displayName", "createdDateTime", "signInAudience",
                      "publisherDomain", "passwordCredentials", "keyCredentials")
SERVICE_PRINCIPAL_FIELDS = ("id", "appId", "displayName", "servicePrincipalType",
                            "accountEnabled", "appOwnerOrganizationId", "passwordCredentials",
                            "keyCredentials")


@dataclass(frozen=True)
class Listing:
    name: str  # the service named in a collection error
    kinds: tuple[str, ...]
    fetch: Callable[[Graph, Scope], Iterator[Resource]]


def _collection(kind: str, prefix: str, path: str, operation: str, graph: Graph,
                scope: Scope, **query: object) -> Iterator[Resource]:
    for item in graph.items(path, operation, **query):
        yield scope.resource(kind, f"entra:{prefix}:{item['id']}", item)


def _singleton(kind: str, path: str, operation: str, graph: Graph,
               scope: Scope) -> Iterator[Resource]:
    policy = graph.single(path, operation)
    yield scope.resource(kind, f"entra:policy:{policy['id']}", policy)


def _listing(name: str, kind: str, fetch: Callable[..., Iterator[Resource]],
             *args: object, **query: object) -> Listing:
    return Listing(name, (kind,), partial(fetch, kind, *args, **query))


LISTINGS: tuple[Listing, ...] = (
    Listing("users", (users.KIND,), users.users),
    _listing("conditionalAccess", "entra.conditional_access_policy", _collection, "policy",
             "identity/conditionalAccess/policies", "conditionalAccessPolicies.list"),
    _listing("securityDefaults", "entra.security_defaults", _singleton,
             "policies/identitySecurityDefaultsEnforcementPolicy",
             "identitySecurityDefaultsEnforcementPolicy.get"),
    _listing("authorizationPolicy", "entra.authorization_policy", _singleton,
             "policies/authorizationPolicy", "authorizationPolicy.get"),
    _listing("roleDefinitions", "entra.role_definition", _collection, "role_definition",
             "roleManagement/directory/roleDefinitions", "roleDefinitions.list"),
    # The principal comes with each assignment: its type, userType and state in the same
    # answer, instead of one call per principal.
    _listing("roleAssignments", "entra.role_assignment", _collection, "role_assignment",
             "roleManagement/directory/roleAssignments", "roleAssignments.list",
             expand="principal"),
    _listing("applications", "entra.application", _collection, "application",
             "applications", "applications.list", select=APPLICATION_FIELDS, top=MAX_PAGE),
    _listing("servicePrincipals", "entra.service_principal", _collection, "service_principal",
             "servicePrincipals", "servicePrincipals.list", select=SERVICE_PRINCIPAL_FIELDS,
             top=MAX_PAGE),
)
