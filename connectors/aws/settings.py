"""Options of an `aws` source in annexa.yaml. Credentials never live here."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ACCOUNT = re.compile(r"^\d{12}$")
# An organisational unit, or the root (which holds every account).
_PARENT = re.compile(r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})$")


class OrganizationSettings(BaseModel):
    """`organization:` of an aws source: every active account of the organisation that the
    source's credentials manage (the management or a delegated administrator account) is
    collected through `role_name`, each account as a unit of its own."""

    model_config = ConfigDict(extra="forbid")

    role_name: str = Field(pattern=r"^[\w+=,.@/-]{1,64}$",
                           description="the role assumed in every member account")
    external_id: str | None = Field(None, min_length=2, max_length=1224,
                                    description="the ExternalId the member roles require")
    include: list[str] = Field(default_factory=list,
                               description="only these accounts, and the accounts under these "
                                           "OUs (all active accounts when empty)")
    exclude: list[str] = Field(default_factory=list,
                               description="never these accounts, nor those under these OUs")

    @field_validator("include", "exclude")
    @classmethod
    def _accounts_or_units(cls, values: list[str]) -> list[str]:
        for value in values:
            if not (_ACCOUNT.match(value) or _PARENT.match(value)):
                raise ValueError(f"{value!r} is neither a 12-digit account id nor an OU id "
                                 "(ou-abcd-12345678) or root id (r-abcd)")
        return values


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[str] = Field(min_length=1, description="regions to collect regional services in")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None
    via_role_arn: str | None = Field(
        None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$",
        description="assumed first, and role_arn with its credentials (a member account's "
                    "role reached through the organisation's management role)")
    via_external_id: str | None = None
    profile: str | None = None
    endpoint_url: str | None = Field(
        None, description="send every call here (an emulator or a private endpoint)"
    )
    max_attempts: int = Field(10, ge=1, le=20, description="botocore adaptive retry attempts")
    workers: int = Field(8, ge=1, le=32, description="services and regions read at once")
    organization: OrganizationSettings | None = Field(
        None, description="collect every account of the organisation, each as its own unit")

    @field_validator("regions")
    @classmethod
    def _regions_look_like_regions(cls, regions: list[str]) -> list[str]:
        for region in regions:
            parts = region.split("-")
            if len(parts) < 3 or not parts[-1].isdigit():
                raise ValueError(f"{region!r} is not an AWS region name such as eu-west-1")
        return regions
