"""Options of a `github` source in annexa.yaml. Secrets never live here: a personal or
fine-grained token is read from the variable `token_env` names, a GitHub App's private key
from the file `private_key_file` names."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from connectors.http import HttpSettings

_HTTPS_BASE = re.compile(r"^https://[^/?#\s]+(/[^?#\s]*)?$")
_GHES_REST = "/api/v3"


class Settings(HttpSettings):
    organization: str = Field(
        pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$",
        description="the organisation's login, as in https://github.com/<organization>")
    api_url: str = Field(
        "https://api.github.com",
        description="the REST API v3: https://api.github.com, or GitHub Enterprise Server's "
                    "https://<host>/api/v3")
    token_env: str = Field(
        "GITHUB_TOKEN", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="the environment variable holding a fine-grained or classic token "
                    "(unused with a GitHub App)")
    app_id: int | None = Field(None, gt=0, description="a GitHub App's id, instead of a token")
    private_key_file: Path | None = Field(
        None, description="the GitHub App's private key (PEM), which signs its JWTs")
    installation_id: int | None = Field(
        None, gt=0, description="the App's installation on the organisation")

    @field_validator("api_url")
    @classmethod
    def _https_base(cls, url: str) -> str:
        if not _HTTPS_BASE.match(url):
            raise ValueError(f"{url!r} is not an https:// URL such as https://api.github.com "
                             "or https://ghe.example.com/api/v3")
        return url.rstrip("/")

    @field_validator("private_key_file")
    @classmethod
    def _pem_key(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
        except ValueError:
            raise ValueError(f"{path} is not a PEM private key") from None
        if "PRIVATE KEY-----" not in text:
            raise ValueError(f"{path} is not a PEM private key (GitHub App settings, "
                             "Private keys, Generate a private key)")
        return path

    @model_validator(mode="after")
    def _app_complete(self) -> Settings:
        app = {"app_id": self.app_id, "private_key_file": self.private_key_file,
               "installation_id": self.installation_id}
        given = [name for name, value in app.items() if value is not None]
        if given and len(given) < len(app):
            missing = ", ".join(name for name in app if name not in given)
            raise ValueError(f"a GitHub App needs app_id, private_key_file and "
                             f"installation_id: {missing} missing")
        return self

    @property
    def uses_app(self) -> bool:
        return self.app_id is not None

    @property
    def graphql_url(self) -> str:
        """github.com answers GraphQL at https://api.github.com/graphql, Enterprise Server at
        https://<host>/api/graphql: beside /api/v3, not under it."""
        if self.api_url.endswith(_GHES_REST):
            return self.api_url.removesuffix(_GHES_REST) + "/api/graphql"
        return self.api_url + "/graphql"
