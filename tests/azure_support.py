"""Fixtures for the Azure connector's tests: one loopback emulator of ARM, Resource Graph and
the Microsoft token service per session, reset and seeded with the sample tenant per test;
the credentials that the real DefaultAzureCredential reads; the connector and the CLI run
against it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.demo.emulators import azure as emulator
from collector.demo.emulators.azure import OWNER
from collector.demo.emulators.azure_sample import DEV, PROD, seed
from collector.demo.emulators.server import FakeApi
from collector.model import CollectionError, Resource, Scope
from connectors import azure as connector

# Small enough that the sample tenant spans several pages of every listing.
PAGE_SIZE = 5


@dataclass
class Tenant:
    api: FakeApi
    state: emulator.Azure
    planted: dict[str, set[str]]

    def settings(self, **options: Any) -> connector.Settings:
        source = emulator.source(self.api)
        del source["name"], source["kind"]
        return connector.Settings.model_validate(
            {**source, "backoff": 0, "max_attempts": 4, **options})

    def collect(self, **options: Any) -> list[Scope | Resource | CollectionError]:
        return list(connector.collect(self.settings(**options)))

    def write_config(self, tmp_path: Path, database_url: str, **options: Any) -> Path:
        source = {**emulator.source(self.api, name="azure-test"), "schedule": "1h",
                  "backoff": 0, "max_attempts": 4, **options}
        cfg = {"database": database_url, "signing_key": str(tmp_path / "signing.key"),
               "metrics": {"host": "127.0.0.1", "port": 0},
               "api": {"host": "127.0.0.1", "port": 0}, "sources": [source]}
        path = tmp_path / "annexa.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path


PROD_GROUP, DEV_GROUP = "mg-prod", "mg-dev"


def in_groups(state: emulator.Azure, dev_parent: str | None = None) -> None:
    """The sample's prod and dev subscriptions each in a management group of their own (dev's
    below `dev_parent` when given, else below the root), each group with an Owner assigned at
    the group itself: a row that a query scoped to groups returns outside every subscription."""
    state.management_group(PROD_GROUP, "Production")
    state.management_group(DEV_GROUP, "Development", dev_parent)
    state.place(PROD, PROD_GROUP)
    state.place(DEV, DEV_GROUP)
    for group in (PROD_GROUP, DEV_GROUP):
        state.group_role_assignment(group, OWNER, f"owner-of-{group}")


@pytest.fixture(scope="session")
def azure_server() -> Iterator[FakeApi]:
    api, _ = emulator.start(page_size=PAGE_SIZE)
    yield api
    api.stop()


@pytest.fixture
def tenant(azure_server: FakeApi, monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """The sample tenant, freshly seeded, with the demo app's secret in the environment."""
    state: emulator.Azure = azure_server.data["azure"]
    state.reset()
    # Tests collect many times a second; the client's pacing by the quota headers is tested
    # in test_http_client.py.
    state.quota = 1_000_000
    azure_server.heal()
    azure_server.reset_calls()
    azure_server.page_size = PAGE_SIZE
    for name in ("AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_USERNAME", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in emulator.credentials_env().items():
        monkeypatch.setenv(name, value)
    return Tenant(azure_server, state, seed(state))


def resources(items: list[Any]) -> dict[str, Resource]:
    return {i.key: i for i in items if isinstance(i, Resource)}


def errors(items: list[Any]) -> list[CollectionError]:
    return [i for i in items if isinstance(i, CollectionError)]
