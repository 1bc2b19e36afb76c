"""The Cloud Identity Policy API: the security settings of the Admin console, one policy per
org unit or group where a value is set (https://cloudidentity.googleapis.com/v1/policies).
Only `settings/security.*` is asked for: the checks read nothing else."""

from __future__ import annotations

from collections.abc import Iterator

from collector.model import CollectionError, Resource, Scope
from connectors.google_workspace.resources import listing
from connectors.http import HttpClient, paging

POLICY = "google_workspace.policy"
MAX_POLICIES = 100
# A CEL expression; the doubled backslash is CEL's escape for the regular expression's \.
FILTER = ("customer == \"customers/{customer}\" && "
          "setting.type.matches('^settings/security\\\\..*$')")


def policies(client: HttpClient, scope: Scope) -> Iterator[Resource | CollectionError]:
    pages = paging.page_token(client, "v1/policies", operation="policies.list",
                              items="policies",
                              params={"filter": FILTER.format(customer=scope.id),
                                      "pageSize": MAX_POLICIES})
    yield from listing(scope, pages, kind=POLICY, field="name",
                       service="cloudidentity.policies", operation="policies.list",
                       prefix="policies/")
