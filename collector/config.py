"""annexa.yaml: one file for the whole service. Secrets never live in it: credentials come
from environment variables or the providers' own credential chains."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from collector.held_keys import is_held
from connectors import KINDS, connector

DEFAULT_FILE = "annexa.yaml"
_INTERVAL = re.compile(r"^(\d+)\s*(s|m|h|d|w|y)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}


class ConfigError(Exception):
    """A configuration problem, phrased as `file: field.path: what is wrong`."""


def parse_duration(text: str) -> timedelta:
    match = _INTERVAL.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 6h, 7d, 2w or 3y")
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def parse_schedule(text: str) -> tuple[str, Any]:
    """("interval", timedelta) or ("cron", the five cron fields)."""
    text = text.strip()
    if _INTERVAL.match(text):
        interval = parse_duration(text)
        if interval < timedelta(minutes=1):
            raise ValueError("an interval schedule must be at least 1m")
        return "interval", interval
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"{text!r} is neither an interval (6h) nor a cron expression: {exc}") from None
    return "cron", text


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)


class ApiConfig(BaseModel):
    """The read-only auditor API that `annexa run` serves beside /metrics."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    seal_interval: str = Field("5m", description="how often the access log is sealed")
    bad_token_limit: int = Field(10, ge=1, le=1_000_000, description=(
        "refused tokens from one client address within bad_token_window before it gets 429"))
    bad_token_window: str = Field("5m", description="the window of bad_token_limit")

    @field_validator("seal_interval", "bad_token_window")
    @classmethod
    def _valid_interval(cls, value: str) -> str:
        if parse_duration(value) < timedelta(seconds=1):
            raise ValueError(f"{value!r} is shorter than 1s")
        return value

    @property
    def seal_every(self) -> timedelta:
        return parse_duration(self.seal_interval)

    @property
    def bad_token_every(self) -> timedelta:
        return parse_duration(self.bad_token_window)


# Annexa's own sources (the SoA, attestations, people, key handovers, the API's access log)
# are named so: a configured source of that name would be read as one of them.
RESERVED_PREFIX = "annexa-"


class SourceConfig(BaseModel):
    """A configured instance of a connector; its kind-specific options sit beside these."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    kind: str
    schedule: str = "6h"
    # How long superseded evidence of this source is kept (`annexa prune`); none: for ever.
    retention: str | None = None

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.lower().startswith(RESERVED_PREFIX):
            raise ValueError(f"{name!r} is reserved: names beginning with {RESERVED_PREFIX!r} "
                             "belong to Annexa's own sources (annexa-soa, annexa-people, "
                             "annexa-keys, ...); name the source otherwise")
        return name

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
        return kind

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, schedule: str) -> str:
        parse_schedule(schedule)
        return schedule

    @field_validator("retention")
    @classmethod
    def _valid_retention(cls, retention: str | None) -> str | None:
        if retention is not None:
            parse_duration(retention)
        return retention

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def settings(self) -> BaseModel:
        """The connector's own settings model, validated from this source's extra options."""
        return connector(self.kind).Settings.model_validate(self.options)


# Source kinds whose users are people's own records: one of them is the truth about people.
IDENTITY_PROVIDER_KINDS = ("okta", "entra", "google_workspace")


class PeopleConfig(BaseModel):
    """People joined across sources (the derived source `annexa-people`)."""

    model_config = ConfigDict(extra="forbid")
    authoritative: str = Field(description="the identity-provider source whose people are the "
                                           "truth")
    mapping: Path | None = Field(None, description="the people mapping file: links and "
                                                   "exceptions")
    schedule: str = Field("6h", description="how often people are joined again, besides after "
                                            "every run of a source they join")

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, schedule: str) -> str:
        parse_schedule(schedule)
        return schedule


class QueueConfig(BaseModel):
    """`queue:`: collections run as Celery tasks on `annexa worker` processes that share the
    database (the cluster, collector/cluster/)."""

    model_config = ConfigDict(extra="forbid")
    broker: str = Field(pattern=r"^(redis|rediss|amqp|amqps|pyamqp)://",
                        description="Redis (redis://host:6379/0) or RabbitMQ (amqp://user@host/"
                                    "vhost) URL; its password from the URL's environment, "
                                    "see README")
    time_limit: str = Field("3h", description="a unit's run is killed after this long")
    wait: str = Field("6h", description="how long `annexa collect` waits for the seals")
    retries: int = Field(3, ge=0, le=20, description="retries of a unit whose worker could "
                                                     "not reach the database")
    tasks_per_process: int = Field(10, ge=1, le=10_000,
                                   description="a worker's pool process is replaced after this "
                                               "many units, which returns the memory it grew")

    @field_validator("time_limit", "wait")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def time_limit_seconds(self) -> float:
        return parse_duration(self.time_limit).total_seconds()

    @property
    def wait_seconds(self) -> float:
        return parse_duration(self.wait).total_seconds()


# `writer: auto`: a writer process costs about 60 MB and a fork; below this many resources a run
# is over in seconds and gains little from a second core.
PROCESS_WRITER_FROM = 20_000


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    database: str = "sqlite:///annexa.db"
    # A key file, or a key held elsewhere: a PKCS#11 URI (pkcs11:...) or an AWS KMS key ARN.
    signing_key: Path | str = Path("annexa-signing.key")
    retired_signing_keys: list[str] = Field(
        default_factory=list, description="held keys that signing_key replaced (PKCS#11 URIs "
                                          "or KMS ARNs): the newest co-signs the handover")
    metrics: MetricsConfig = MetricsConfig()
    api: ApiConfig = ApiConfig()
    freshness: str = Field("48h", description="evidence older than this makes a control stale")
    writer: Literal["auto", "inline", "process"] = Field(
        "auto", description="where a run's evidence is written: in the collecting process, in "
                            "a writer process of its own (a second core, about 60 MB more), or "
                            "auto: in a writer process once the source's last run held "
                            f"{PROCESS_WRITER_FROM:,} resources (a first run moves to one "
                            "when it grows large)")
    sources: list[SourceConfig] = []
    people: PeopleConfig | None = None
    queue: QueueConfig | None = None
    soa: Path | None = Field(None, description="Statement of Applicability (YAML), loaded into "
                                               "the ledger by `collect` and `run`")
    path: Path | None = Field(None, exclude=True)

    @field_validator("signing_key")
    @classmethod
    def _key_file_or_held(cls, value: Path | str) -> Path | str:
        return value if is_held(value) else Path(value)

    @field_validator("freshness")
    @classmethod
    def _valid_freshness(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return sources

    @model_validator(mode="after")
    def _queue_needs_a_shared_database(self) -> Config:
        if self.queue is not None and self.database.startswith("sqlite"):
            raise ValueError("queue: workers on other machines cannot share a SQLite file; "
                             "give database: a PostgreSQL URL, or remove queue: to collect "
                             "in one process")
        return self

    @model_validator(mode="after")
    def _people_rest_on_an_identity_provider(self) -> Config:
        if self.people is None:
            return self
        kinds = {source.name: source.kind for source in self.sources}
        name = self.people.authoritative
        if name not in kinds:
            raise ValueError(f"people.authoritative: no source named {name!r} "
                             f"(configured: {', '.join(kinds) or 'none'})")
        if kinds[name] not in IDENTITY_PROVIDER_KINDS:
            raise ValueError(f"people.authoritative: {name!r} is of kind {kinds[name]!r}, not "
                             f"an identity provider ({', '.join(IDENTITY_PROVIDER_KINDS)})")
        return self

    @property
    def freshness_window(self) -> timedelta:
        return parse_duration(self.freshness)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"{self.path}: no source named {name!r} (configured: {known})")


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _raise_validation(path: Path, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> None:
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
    raise ConfigError(f"{path}: {_where(loc)}: {msg}{more}") from None


def resolve_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("ANNEXA_CONFIG") or DEFAULT_FILE)


def load(explicit: str | None = None) -> Config:
    """Find, parse and validate the configuration; ConfigError names file, field and problem."""
    path = resolve_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        how = "--config" if explicit else ("$ANNEXA_CONFIG" if os.environ.get("ANNEXA_CONFIG")
                                           else f"./{DEFAULT_FILE}")
        raise ConfigError(f"{path}: configuration file not found (looked for {how})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: {where}invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping, got {type(raw).__name__}")
    _anchor_source_files(raw, path.resolve().parent)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        _raise_validation(path, exc)
    for i, source in enumerate(config.sources):
        try:
            source.settings()
        except ValidationError as exc:
            _raise_validation(path, exc, ("sources", i))
    return _anchored(config, path)


# Source options that name files: relative to the configuration file, as signing_key is.
_FILE_OPTIONS = ("ca_bundle",)


def _anchor_source_files(raw: dict[str, Any], base: Path) -> None:
    for source in raw.get("sources") or ():
        if not isinstance(source, dict):
            continue
        for name, value in source.items():
            if (name in _FILE_OPTIONS or name.endswith("_file")) and isinstance(value, str) \
                    and value and not Path(value).is_absolute():
                source[name] = str(base / value)


def _anchored(config: Config, path: Path) -> Config:
    """Relative paths in the file are relative to the file, not to the working directory."""
    base = path.resolve().parent
    updates: dict[str, Any] = {"path": path}
    if isinstance(config.signing_key, Path) and not config.signing_key.is_absolute():
        updates["signing_key"] = base / config.signing_key
    if config.soa is not None and not config.soa.is_absolute():
        updates["soa"] = base / config.soa
    if config.people is not None and config.people.mapping is not None \
            and not config.people.mapping.is_absolute():
        updates["people"] = config.people.model_copy(
            update={"mapping": base / config.people.mapping})
    prefix = "sqlite:///"
    db = config.database
    if db.startswith(prefix) and not db.startswith(prefix + "/") and db != "sqlite:///:memory:":
        updates["database"] = prefix + str(base / db[len(prefix):])
    return config.model_copy(update=updates)
