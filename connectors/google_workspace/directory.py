"""The Admin SDK Directory API v1: the customer, its org units, users, admin roles and role
assignments. Each listing asks for the fields the checks read and nothing more (a partial
response: less personal data kept as evidence, and no new version when, say, a phone number
changes), at the largest page the API allows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from collector.model import ALL_REGIONS, FETCH_ERRORS, CollectionError, Resource, Scope
from connectors.google_workspace.resources import key_of, listing
from connectors.http import HttpClient, HttpError, paging

CUSTOMER = "google_workspace.customer"
ORG_UNIT = "google_workspace.org_unit"
USER = "google_workspace.user"
ROLE = "google_workspace.role"
ROLE_ASSIGNMENT = "google_workspace.role_assignment"

BASE = "admin/directory/v1"
CUSTOMER_FIELDS = "id,customerDomain,customerCreationTime"
USER_FIELDS = ("nextPageToken,users(id,primaryEmail,orgUnitPath,isAdmin,isDelegatedAdmin,"
               "isEnrolledIn2Sv,isEnforcedIn2Sv,suspended,suspensionReason,archived,"
               "lastLoginTime,creationTime)")
ORG_UNIT_FIELDS = ("organizationUnits(orgUnitId,orgUnitPath,name,parentOrgUnitId,"
                   "parentOrgUnitPath)")
ROLE_FIELDS = "nextPageToken,items(roleId,roleName,roleDescription,isSystemRole,isSuperAdminRole)"
ROLE_ASSIGNMENT_FIELDS = ("nextPageToken,items(roleAssignmentId,roleId,assignedTo,assigneeType,"
                          "scopeType,orgUnitId,condition)")
# The largest pages each listing accepts.
MAX_USERS, MAX_ROLES, MAX_ROLE_ASSIGNMENTS = 500, 100, 200
# Added to each org unit: how many users the listing placed directly in it.
USER_COUNT = "userCount"


class SourceUnreachable(RuntimeError):
    """The customer could not be read: nothing can be collected from this source."""


def customer_scope(directory: HttpClient, customer: str,
                   kinds: tuple[str, ...]) -> tuple[Scope, Resource]:
    """The customer as the source's scope (which lists `kinds` in full), and as a resource of
    its own."""
    try:
        data = directory.get_json(f"{BASE}/customers/{customer}", operation="customers.get",
                                  params={"fields": CUSTOMER_FIELDS})
        key = key_of("customer", data, "id", "customers.get")
    except HttpError as exc:
        raise SourceUnreachable(str(exc)) from exc
    scope = Scope(provider="google_workspace", id=str(data["id"]), key=key, kinds=kinds)
    return scope, scope.resource(CUSTOMER, key, data)


def users_then_org_units(directory: HttpClient,
                         scope: Scope) -> Iterator[Resource | CollectionError]:
    """Every user, then every org unit with the number of users directly in it: the
    settings checks judge only the org units that someone signs in from."""
    counts: Counter[str] = Counter()
    failure: str | None = None
    pages = paging.page_token(directory, f"{BASE}/users", operation="users.list", items="users",
                              params={"customer": scope.id, "maxResults": MAX_USERS,
                                      "projection": "basic", "viewType": "admin_view",
                                      "fields": USER_FIELDS})
    for item in listing(scope, pages, kind=USER, field="id",
                        service="admin.directory.users", operation="users.list"):
        if isinstance(item, CollectionError):
            failure = item.message
        else:
            counts[str(item.data.get("orgUnitPath") or "/")] += 1
        yield item
    yield from org_units(directory, scope, counts, failure)


def org_units(directory: HttpClient, scope: Scope, counts: Counter[str],
              users_failure: str | None) -> Iterator[Resource | CollectionError]:
    """The root org unit and all below it, in one answer (the API does not page them)."""
    pages = paging.page_token(directory, f"{BASE}/customer/{scope.id}/orgunits",
                              operation="orgunits.list", items="organizationUnits",
                              params={"type": "allIncludingParent", "fields": ORG_UNIT_FIELDS})
    try:
        # The Directory API writes org unit ids as "id:03ph8a2z...", the Policy API as
        # "orgUnits/03ph8a2z...": the key holds the id alone.
        units = [(key_of("org_unit", unit, "orgUnitId", "orgunits.list", "id:"), unit)
                 for page in pages for unit in page]
    except HttpError as exc:
        yield scope.error("admin.directory.orgunits", ALL_REGIONS, (ORG_UNIT,), str(exc))
        return
    for key, unit in units:
        if users_failure is None:
            unit[USER_COUNT] = counts.get(str(unit.get("orgUnitPath")), 0)
        else:
            unit.setdefault(FETCH_ERRORS, {})[USER_COUNT] = (
                f"the users could not all be listed: {users_failure}")
        yield scope.resource(ORG_UNIT, key, unit)


def roles(directory: HttpClient, scope: Scope) -> Iterator[Resource | CollectionError]:
    pages = paging.page_token(directory, f"{BASE}/customer/{scope.id}/roles",
                              operation="roles.list", items="items",
                              params={"maxResults": MAX_ROLES, "fields": ROLE_FIELDS})
    yield from listing(scope, pages, kind=ROLE, field="roleId",
                       service="admin.directory.roles", operation="roles.list")


def role_assignments(directory: HttpClient,
                     scope: Scope) -> Iterator[Resource | CollectionError]:
    pages = paging.page_token(directory, f"{BASE}/customer/{scope.id}/roleassignments",
                              operation="roleAssignments.list", items="items",
                              params={"maxResults": MAX_ROLE_ASSIGNMENTS,
                                      "fields": ROLE_ASSIGNMENT_FIELDS})
    yield from listing(scope, pages, kind=ROLE_ASSIGNMENT, field="roleAssignmentId",
                       service="admin.directory.roleassignments",
                       operation="roleAssignments.list")
