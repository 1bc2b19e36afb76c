"""The people mapping file: accounts that matching by email or login cannot link to their
person, and accounts that belong to no person on purpose (break-glass, service accounts), each
with an owner and an expiry after which it no longer excuses."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector.people.identities import email


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file and the entry."""


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    account: str = Field(min_length=1)
    person: str

    @field_validator("person")
    @classmethod
    def _email(cls, value: str) -> str:
        address = email(value)
        if address is None:
            raise ValueError(f"{value!r} is not an email address")
        return address


class Exception_(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str
    account: str = Field(min_length=1)
    owner: str
    reason: str | None = None
    expires: date
    non_human: bool = False

    @field_validator("owner")
    @classmethod
    def _email(cls, value: str) -> str:
        address = email(value)
        if address is None:
            raise ValueError(f"{value!r} is not an email address")
        return address


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[Link] = []
    exceptions: list[Exception_] = []

    def link(self, source: str, key: str, label: str) -> str | None:
        for entry in self.accounts:
            if entry.source == source and entry.account in (key, label):
                return entry.person
        return None

    def exception(self, source: str, key: str, label: str) -> Exception_ | None:
        for entry in self.exceptions:
            if entry.source == source and entry.account in (key, label):
                return entry
        return None


def load(path: Path | None) -> Mapping:
    if path is None:
        return Mapping()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise MappingError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: invalid YAML: {exc}") from None
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in err["loc"])
        raise MappingError(f"{path}: {where.replace('.[', '[')}: "
                           f"{err['msg'].removeprefix('Value error, ')}") from None
