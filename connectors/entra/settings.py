"""Options of an `entra` source in annexa.yaml. Credentials never live here: azure-identity's
DefaultAzureCredential chain supplies them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from connectors.http import HttpSettings

# cloud -> (login host, Microsoft Graph): the national clouds' own endpoints.
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgovernment": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


_HTTPS_BASE = re.compile(r"^https://[^/?#\s]+(/[^?#\s]*)?$")


class Settings(HttpSettings):
    tenant_id: str = Field(description="the directory (tenant) id, a GUID: the tenant read")
    cloud: Literal["public", "usgovernment", "china"] = Field(
        "public", description="the national cloud whose login and Graph endpoints are used")
    authority_host: str | None = Field(
        None, description="the login endpoint instead of the cloud's (instance discovery is "
                          "then off)")
    graph: str | None = Field(
        None, description="Microsoft Graph instead of the cloud's; v1.0 is called under it")

    @field_validator("tenant_id")
    @classmethod
    def _tenant_is_a_guid(cls, tenant: str) -> str:
        if not _GUID.match(tenant):
            raise ValueError(f"{tenant!r} is not a tenant id (a GUID such as "
                             "00000000-0000-0000-0000-000000000001); a domain name can change "
                             "hands, the id cannot")
        return tenant.lower()

    @field_validator("authority_host", "graph")
    @classmethod
    def _https_base(cls, url: str | None) -> str | None:
        if url is not None and not _HTTPS_BASE.match(url):
            raise ValueError(f"{url!r} is not an https:// URL such as "
                             "https://graph.microsoft.com")
        return url.rstrip("/") if url else url

    @property
    def login(self) -> str:
        return self.authority_host or CLOUDS[self.cloud][0]

    @property
    def graph_root(self) -> str:
        return self.graph or CLOUDS[self.cloud][1]
