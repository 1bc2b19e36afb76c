"""Options of a `google_workspace` source in annexa.yaml. Credentials never live here: a
service-account key file is named, never inlined."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from connectors.google_key import service_account_key
from connectors.http import HttpSettings


class Settings(HttpSettings):
    customer: str = Field(
        "my_customer", pattern=r"^(my_customer|C[0-9A-Za-z]{5,20})$",
        description="the Workspace customer: `my_customer` (the admin's own) or its ID, C...")
    admin_email: str = Field(
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="the administrator that domain-wide delegation impersonates")
    credentials_file: Path | None = Field(
        None, description="service-account key file (JSON); default Application Default "
                          "Credentials")
    api_endpoint: str | None = Field(
        None, pattern=r"^https://[^/?#\s]+(/[^?#\s]*)?$",
        description="send every Google API call of this source here (an emulator, a private "
                    "endpoint), the Cloud Identity Policy API included")

    @field_validator("credentials_file")
    @classmethod
    def _service_account_key(cls, path: Path | None) -> Path | None:
        return service_account_key(path, "domain-wide delegation needs a service account")
