"""Fixtures for the GitHub tests: one GitHub fake for the session (REST and GraphQL on the same
loopback HTTPS server), reset to the demo organisation before each test, with a fine-grained
token holding every permission the connector needs in GITHUB_TOKEN."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collector.demo.emulators import github, github_seed
from collector.demo.emulators.server import FakeApi, Tokens
from collector.model import CollectionError, Resource, Scope
from connectors.github import Settings, collect
from tests.helpers import config_file

ORG_KEY = f"github:org:{github_seed.ORG}"
APP_ID, INSTALLATION_ID = 4242, 777
# The checks that judge the one organisation: planted with its gap, they have no passing twin
# in the same organisation.
SINGLE = frozenset({"github.organization.base_permission_at_most_read",
                    "github.organization.workflow_token_read_only"})


@dataclass
class GitHubFake:
    api: FakeApi
    tokens: Tokens
    apps: dict[int, tuple[str, int]]
    org: github.Org
    planted: dict[str, set[str]]
    token: str = ""
    key_file: Path | None = None

    def source(self, **options: Any) -> dict[str, Any]:
        return {**github.source_for(self.api, self.org, name="github-test"), "backoff": 0,
                **options}

    def settings(self, **options: Any) -> Settings:
        source = self.source(**options)
        del source["name"], source["kind"]
        return Settings(**source)

    def collect(self, **options: Any) -> list[Scope | Resource | CollectionError]:
        return list(collect(self.settings(**options)))

    def app_options(self) -> dict[str, Any]:
        return {"app_id": APP_ID, "private_key_file": str(self.key_file),
                "installation_id": INSTALLATION_ID}

    def repo(self, name: str) -> github.Repo:
        found = self.org.repo(name)
        assert found is not None, name
        return found


def _app_key(directory: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "github-app.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public.decode()


@pytest.fixture(scope="session")
def github_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHubFake]:
    org, planted = github_seed.sample_org()
    api, tokens, apps = github.start(org, page_size=3)
    key_file, public = _app_key(tmp_path_factory.mktemp("github-app"))
    apps[APP_ID] = (public, INSTALLATION_ID)
    yield GitHubFake(api, tokens, apps, org, planted, key_file=key_file)
    api.stop()


@pytest.fixture
def github_fake(github_server: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> GitHubFake:
    """The session's fake with the demo organisation as seeded, no faults, fresh counts, and
    a fresh token with every permission in GITHUB_TOKEN."""
    fresh, planted = github_seed.sample_org()
    for name in (f.name for f in fields(github.Org)):
        setattr(github_server.org, name, getattr(fresh, name))
    github_server.planted = planted
    github_server.api.heal()
    github_server.api.reset_calls()
    github_server.api.page_size = 3
    github_server.token = github.personal_token(github_server.tokens, github_server.org)
    monkeypatch.setenv("GITHUB_TOKEN", github_server.token)
    return github_server


def write_config(tmp_path: Path, database_url: str, fake: GitHubFake, **options: Any) -> Path:
    return config_file(tmp_path, database_url,
                       {**fake.source(**options), "schedule": "1h", "max_attempts": 4})

