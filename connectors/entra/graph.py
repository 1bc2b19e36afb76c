"""Microsoft Graph v1.0 for one tenant: an HttpClient with the azure-identity token of the
tenant that the source names, and the listing shapes the Entra connector uses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connectors.entra.settings import Settings
from connectors.http import HttpClient, MalformedResponse, Observer, paging, trust
from connectors.http.auth import TokenCredentialAuth

SERVICE = "msgraph"
# The largest page most directory listings allow ($top above it is refused).
MAX_PAGE = 999


class Graph:
    def __init__(self, settings: Settings, observer: Observer | None = None) -> None:
        self.auth = TokenCredentialAuth(_credential(settings), f"{settings.graph_root}/.default",
                                        tenant_id=settings.tenant_id)
        self.client = HttpClient(f"{settings.graph_root}/v1.0/", service=SERVICE,
                                 settings=settings, auth=self.auth, observer=observer)

    def pages(self, path: str, operation: str, *, select: Sequence[str] = (),
              top: int | None = None, expand: str | None = None) -> Iterator[list[Any]]:
        """The pages of a collection, following `@odata.nextLink` (which carries the query)."""
        params: dict[str, Any] = {}
        if select:
            params["$select"] = ",".join(select)
        if top is not None:
            params["$top"] = top
        if expand:
            params["$expand"] = expand
        return paging.next_link(self.client, path, operation=operation, link="@odata.nextLink",
                                params=params)

    def items(self, path: str, operation: str, **query: Any) -> Iterator[dict[str, Any]]:
        for page in self.pages(path, operation, **query):
            for item in page:
                yield entity(item, operation)

    def single(self, path: str, operation: str) -> dict[str, Any]:
        """One entity (a policy singleton), without the answer's own metadata."""
        answer = self.client.get_json(path, operation=operation)
        answer = entity(answer, operation)
        answer.pop("@odata.context", None)
        return answer


def _credential(settings: Settings) -> Any:
    """azure-identity's DefaultAzureCredential chain (environment, workload identity, managed
    identity, the Azure CLI...), allowed to ask for tokens of the source's tenant."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(
        authority=settings.login,
        # An authority host of our own choosing is not in Microsoft's instance metadata.
        disable_instance_discovery=settings.authority_host is not None,
        # Token requests trust what the source's Graph calls trust (azure-core passes it as
        # `verify`, which REQUESTS_CA_BUNDLE cannot override).
        connection_verify=trust(settings.ca_bundle),
        additionally_allowed_tenants=[settings.tenant_id])


def entity(item: Any, operation: str) -> dict[str, Any]:
    """A directory object as Graph sent it; one without an id cannot be told apart from the
    others, so its listing is not trusted."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise MalformedResponse(operation, "an object in the answer has no id")
    return item
