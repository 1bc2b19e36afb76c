"""Options of an `okta` source in annexa.yaml. Secrets never live here: an SSWS API token is
read from the variable `token_env` names, an OAuth 2.0 service app's private key from the file
`private_key_file` names."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import Field, field_validator, model_validator

from connectors.http import HttpSettings

# The read scopes of every listing the connector makes (Okta's management API scopes).
DEFAULT_SCOPES = ("okta.users.read", "okta.roles.read", "okta.policies.read",
                  "okta.authenticators.read", "okta.apps.read", "okta.apiTokens.read",
                  "okta.networkZones.read")
_ORG_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Settings(HttpSettings):
    org_url: str = Field(description="the Okta org, https://<org>.okta.com (no path)")
    token_env: str = Field("OKTA_API_TOKEN",
                           description="the environment variable holding an SSWS API token")
    client_id: str | None = Field(None, description="an OAuth 2.0 service app's client id "
                                                    "(with private_key_file, instead of a token)")
    private_key_file: Path | None = Field(
        None, description="the service app's private key (PEM) for private_key_jwt")
    key_id: str | None = Field(None, description="the key's id (kid) as registered in Okta, "
                                                 "needed when the app has several keys")
    scopes: tuple[str, ...] = Field(DEFAULT_SCOPES, min_length=1,
                                    description="OAuth scopes the service app asks for")

    @field_validator("org_url")
    @classmethod
    def _https_origin(cls, url: str) -> str:
        url = url.rstrip("/")
        if not _ORG_URL.match(url):
            raise ValueError(f"{url!r} is not an Okta org URL such as https://acme.okta.com "
                             "(https, a host, no path)")
        return url

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, name: str) -> str:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        return name

    @field_validator("private_key_file")
    @classmethod
    def _private_key(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        try:
            load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not an unencrypted PEM private key: {exc}") from None
        return path

    @model_validator(mode="after")
    def _service_app_whole(self) -> Settings:
        if (self.client_id is None) != (self.private_key_file is None):
            raise ValueError("an OAuth service app needs both client_id and private_key_file")
        return self

    @property
    def service_app(self) -> bool:
        return self.client_id is not None

    @property
    def host(self) -> str:
        """The org's host name, its port left out: the org scope's key does not change when
        the org is reached through another port."""
        return urlsplit(self.org_url).hostname or self.org_url
