"""Options of a `gcp` source in annexa.yaml. Credentials never live here: they come from
Application Default Credentials or a named key file."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from connectors.google_key import service_account_key
from connectors.http import HttpSettings

NUMBER = re.compile(r"^[0-9]{1,25}$")
# A project is named by its id (6 to 30 lower-case letters, digits and hyphens) or number.
PROJECT = re.compile(r"^([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,25})$")
# ListAssets returns at most this many assets a page.
MAX_PAGE_SIZE = 1000


class Settings(HttpSettings):
    organization: str | None = Field(
        None, description="the organization's number: every project below it is read")
    folders: list[str] | None = Field(
        None, min_length=1, description="folder numbers: every project below them is read")
    projects: list[str] | None = Field(
        None, min_length=1, description="project ids or numbers: only these are read")
    unit: str | None = Field(
        None, description="set by the collector for one unit of a split source: the one of "
                          "folders it reads (a project also under an earlier one is left to "
                          "that one's unit)")
    api_endpoint: str | None = Field(
        None, pattern=r"^https://[^/?#\s]+(/[^?#\s]*)?$",
        description="send every Google API call of this source here (a private endpoint, an "
                    "emulator) instead of https://cloudasset.googleapis.com")
    credentials_file: Path | None = Field(
        None, description="service-account key file (JSON); default Application Default "
                          "Credentials, which also take workload identity federation configs")
    page_size: int = Field(MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE,
                           description="assets asked for a page")

    @field_validator("organization")
    @classmethod
    def _organization(cls, value: str | None) -> str | None:
        if value is not None and not NUMBER.match(value.removeprefix("organizations/")):
            raise ValueError(f"{value!r} is not an organization number such as 123456789012")
        return None if value is None else value.removeprefix("organizations/")

    @field_validator("folders")
    @classmethod
    def _folders(cls, values: list[str] | None) -> list[str] | None:
        return _distinct(values, "folders/", NUMBER, "a folder number such as 456")

    @field_validator("projects")
    @classmethod
    def _projects(cls, values: list[str] | None) -> list[str] | None:
        return _distinct(values, "projects/", PROJECT, "a project id or number")

    @field_validator("credentials_file")
    @classmethod
    def _credentials_file(cls, path: Path | None) -> Path | None:
        return service_account_key(path, "name other credentials in "
                                         "GOOGLE_APPLICATION_CREDENTIALS")

    @model_validator(mode="after")
    def _exactly_one_parent(self) -> Settings:
        named = [n for n in ("organization", "folders", "projects") if getattr(self, n)]
        if len(named) != 1:
            raise ValueError("name exactly one of organization, folders, projects"
                             + (f" (got {', '.join(named)})" if named else ""))
        if self.unit is not None and self.unit not in (self.folders or ()):
            raise ValueError(f"unit {self.unit!r} is not one of folders")
        return self

    @property
    def parents(self) -> list[str]:
        """What ListAssets is asked at: `organizations/N`, `folders/N` or `projects/P`."""
        if self.organization:
            return [f"organizations/{self.organization}"]
        if self.unit:
            return [f"folders/{self.unit}"]
        if self.folders:
            return [f"folders/{f}" for f in self.folders]
        return [f"projects/{p}" for p in self.projects or ()]

    @property
    def earlier_folders(self) -> set[str]:
        """`folders/N` of the named folders before this unit's: a project below one of them
        is that unit's."""
        folders = self.folders or []
        return {f"folders/{f}" for f in folders[:folders.index(self.unit)]} if self.unit \
            else set()


def _distinct(values: list[str] | None, prefix: str, pattern: re.Pattern[str],
              what: str) -> list[str] | None:
    if values is None:
        return None
    out: list[str] = []
    for value in values:
        bare = value.removeprefix(prefix)
        if not pattern.match(bare):
            raise ValueError(f"{value!r} is not {what}")
        if bare in out:
            raise ValueError(f"{bare} is listed twice")
        out.append(bare)
    return out
