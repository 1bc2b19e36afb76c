"""Options of an `azure` source in annexa.yaml, and the endpoints of each Azure cloud.
Credentials never live here: azure-identity's DefaultAzureCredential chain supplies them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from connectors.http import HttpSettings

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# A tenant is named by its id or by one of its verified domains (contoso.onmicrosoft.com).
# A management group id: up to 90 letters, digits, `-`, `_`, `.`, `(` and `)`, not ending in a
# period (the tenant root group's id is the tenant id).
MANAGEMENT_GROUP = re.compile(r"^[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]$")
DOMAIN = re.compile(r"^(?=.{4,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                    r"[A-Za-z]{2,63}$")


@dataclass(frozen=True)
class Cloud:
    """Where a cloud signs in and serves ARM, and the audience of its ARM tokens."""

    authority_host: str
    resource_manager: str
    audience: str


CLOUDS: dict[str, Cloud] = {
    "public": Cloud("https://login.microsoftonline.com", "https://management.azure.com",
                    "https://management.azure.com"),
    "china": Cloud("https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn",
                   "https://management.chinacloudapi.cn"),
    "usgovernment": Cloud("https://login.microsoftonline.us",
                          "https://management.usgovcloudapi.net",
                          "https://management.usgovcloudapi.net"),
}


def _https_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"{value!r} is not an https:// URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{value!r} has a query or fragment; give the endpoint's base URL")
    return value.rstrip("/")


class Settings(HttpSettings):
    tenant_id: str = Field(description="the Microsoft Entra tenant whose subscriptions are read; "
                                       "it decides the tenant, whatever AZURE_TENANT_ID says")
    subscriptions: list[str] | None = Field(
        None, min_length=1, description="subscription ids to read (default: every subscription "
                                        "the credential can list)")
    management_groups: list[str] | None = Field(
        None, min_length=1, description="management group ids: every subscription below each is "
                                        "read, each group a unit of work of its own")
    unit: str | None = Field(
        None, description="set by the collector for one unit of a split source: the one of "
                          "management_groups it reads (what is also under an earlier one is "
                          "left to that one's unit)")
    cloud: Literal["public", "china", "usgovernment"] = Field(
        "public", description="the cloud whose sign-in and Resource Manager endpoints are used")
    authority_host: str | None = Field(
        None, description="sign in here instead of the cloud's authority (instance discovery is "
                          "then off)")
    resource_manager: str | None = Field(
        None, description="send every ARM and Resource Graph call here instead of the cloud's "
                          "endpoint")

    @field_validator("tenant_id")
    @classmethod
    def _tenant(cls, value: str) -> str:
        if not (GUID.match(value) or DOMAIN.match(value)):
            raise ValueError(f"{value!r} is neither a tenant id (a GUID) nor a domain name "
                             "such as contoso.onmicrosoft.com")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _subscription_ids(cls, values: list[str] | None) -> list[str] | None:
        return _distinct(values, GUID, "a subscription id (a GUID)", "subscription")

    @field_validator("management_groups")
    @classmethod
    def _management_group_ids(cls, values: list[str] | None) -> list[str] | None:
        return _distinct(values, MANAGEMENT_GROUP, "a management group id (up to 90 letters, "
                         "digits, -, _, ., ( and ), not ending in a period)", "management group")

    @model_validator(mode="after")
    def _one_way_of_choosing(self) -> Settings:
        if self.subscriptions is not None and self.management_groups is not None:
            raise ValueError("name subscriptions or management_groups, not both")
        if self.unit is not None and self.unit not in (self.management_groups or ()):
            raise ValueError(f"unit {self.unit!r} is not one of management_groups")
        return self

    @property
    def earlier_groups(self) -> list[str]:
        """The named management groups before this unit's, lower case: a subscription below
        one of them is that unit's."""
        groups = self.management_groups or []
        return [g.lower() for g in groups[:groups.index(self.unit)]] if self.unit else []

    @field_validator("authority_host", "resource_manager")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return _https_url(value)

    @property
    def endpoints(self) -> Cloud:
        """The cloud's endpoints with this source's overrides; the token audience stays the
        cloud's, since a private or emulated endpoint still takes that cloud's tokens."""
        cloud = CLOUDS[self.cloud]
        return Cloud(self.authority_host or cloud.authority_host,
                     self.resource_manager or cloud.resource_manager, cloud.audience)


def _distinct(values: list[str] | None, pattern: re.Pattern[str], what: str,
              noun: str) -> list[str] | None:
    """`values` if each matches `pattern` and none is listed twice: Azure compares these ids
    without regard to case."""
    if values is None:
        return None
    seen: set[str] = set()
    for value in values:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        if value.lower() in seen:
            raise ValueError(f"{noun} {value} is listed twice")
        seen.add(value.lower())
    return values
