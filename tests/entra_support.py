"""Fixtures for the Entra ID tests: one Graph fake for the session (login and Graph on the
same loopback HTTPS server), reset to the demo tenant before each test, with the app
registration's credentials in the environment where DefaultAzureCredential reads them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from collector.demo.emulators import DEMO_TENANT, entra, entra_seed, microsoft_login
from collector.demo.emulators.server import FakeApi
from collector.model import CollectionError, Resource, Scope
from connectors.entra import Settings, collect
from tests.helpers import config_file

TENANT_KEY = f"entra:tenant:{DEMO_TENANT}"
# The listings the sample tenant's checks cannot both fail and pass in one tenant: they judge
# one object (the tenant, its authorization policy), planted with its gap.
SINGLE = frozenset({"entra.tenant.legacy_authentication_blocked",
                    "entra.authorization_policy.users_cannot_register_applications"})


@dataclass
class EntraFake:
    api: FakeApi
    directory: microsoft_login.Directory
    tenant: entra.Tenant
    planted: dict[str, set[str]]

    def source(self, **options: Any) -> dict[str, Any]:
        return {**entra.source_for(self.api, self.tenant.id, name="entra-test"),
                "backoff": 0, **options}

    def settings(self, **options: Any) -> Settings:
        source = self.source(**options)
        del source["name"], source["kind"]
        return Settings(**source)

    def collect(self, **options: Any) -> list[Scope | Resource | CollectionError]:
        return list(collect(self.settings(**options)))

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.tenant.users if u["userPrincipalName"].startswith(name))


@pytest.fixture(scope="session")
def entra_server() -> Iterator[EntraFake]:
    tenant, planted = entra_seed.sample_tenant(DEMO_TENANT)
    api, directory = entra.start(tenant, page_size=4)
    yield EntraFake(api, directory, tenant, planted)
    api.stop()


@pytest.fixture
def entra_fake(entra_server: EntraFake, monkeypatch: pytest.MonkeyPatch) -> EntraFake:
    """The session's fake with the demo tenant as seeded, no faults, fresh counts, and the
    demo app's client secret in the environment."""
    fresh, planted = entra_seed.sample_tenant(DEMO_TENANT)
    for name in (f.name for f in fields(entra.Tenant)):
        setattr(entra_server.tenant, name, getattr(fresh, name))
    entra_server.planted = planted
    entra_server.api.heal()
    entra_server.api.reset_calls()
    entra_server.api.page_size = 4
    for name, value in entra.credential_env(DEMO_TENANT).items():
        monkeypatch.setenv(name, value)
    return entra_server


def write_config(tmp_path: Path, database_url: str, fake: EntraFake, **options: Any) -> Path:
    return config_file(tmp_path, database_url,
                       {**fake.source(**options), "schedule": "1h", "max_attempts": 4})
