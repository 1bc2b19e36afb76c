"""Fixtures for the Okta tests: one loopback fake of the Okta management API and its org
authorization server for the session, reset to the demo org before each test (no faults,
fresh counts, rate-limit windows of a second so that waiting for a reset is quick), with the
demo's SSWS token in the environment, and a service app whose private key is a file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from collector.demo.emulators import okta, okta_seed
from collector.demo.emulators.server import FakeApi, Tokens
from collector.model import CollectionError, Resource, Scope
from connectors.okta import Settings, collect
from tests.helpers import config_file

PAGE_SIZE = 3
CLIENT_ID = "0oaannexaserviceapp1"
# The listings whose checks judge one object in the sample org: planted with its gap, no twin.
SINGLE = frozenset({"okta.org.super_admins_between_2_and_4"})


@dataclass
class OktaFake:
    api: FakeApi
    limiter: okta.Limiter
    tokens: Tokens
    org: okta.Org
    planted: dict[str, set[str]]
    key_file: Path

    def source(self, **options: Any) -> dict[str, Any]:
        return {**okta.source_for(self.api, name="okta-test"), "backoff": 0, **options}

    def settings(self, **options: Any) -> Settings:
        source = self.source(**options)
        del source["name"], source["kind"]
        return Settings(**source)

    def collect(self, observed: list[tuple[str, str, int, int]] | None = None,
                **options: Any) -> list[Scope | Resource | CollectionError]:
        def observe(service: str, operation: str, status: int, retries: int) -> None:
            if observed is not None:
                observed.append((service, operation, status, retries))
        return list(collect(self.settings(**options), observe))

    def service_app(self, **options: Any) -> dict[str, Any]:
        return {"client_id": CLIENT_ID, "private_key_file": str(self.key_file), **options}

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.org.users if u["profile"]["login"].startswith(name))


@pytest.fixture(scope="session")
def okta_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OktaFake]:
    org, planted = okta_seed.sample_org()
    api, limiter, tokens = okta.start(org, page_size=PAGE_SIZE)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path_factory.mktemp("okta") / "service-app.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    fake = OktaFake(api, limiter, tokens, org, planted, key_file)
    fake.public_key = public  # type: ignore[attr-defined]
    yield fake
    api.stop()


@pytest.fixture
def okta_fake(okta_server: OktaFake, monkeypatch: pytest.MonkeyPatch) -> OktaFake:
    fresh, planted = okta_seed.sample_org()
    fresh.window = 1.0
    fresh.service_apps = {CLIENT_ID: okta.ServiceApp(
        okta_server.public_key,  # type: ignore[attr-defined]
        set(okta.USERS.split()) | {okta.ROLES, okta.POLICIES, okta.AUTHENTICATORS, okta.APPS,
                                   okta.API_TOKENS, okta.ZONES})}
    for name in (f.name for f in fields(okta.Org)):
        setattr(okta_server.org, name, getattr(fresh, name))
    okta_server.planted = planted
    okta_server.api.heal()
    okta_server.api.reset_calls()
    okta_server.api.page_size = PAGE_SIZE
    okta_server.limiter.clear()
    okta_server.tokens.revoke_all()
    monkeypatch.setenv(okta.TOKEN_ENV, okta.DEMO_TOKEN)
    return okta_server


def write_config(tmp_path: Path, database_url: str, fake: OktaFake, **options: Any) -> Path:
    return config_file(tmp_path, database_url,
                       {**fake.source(**options), "schedule": "1h", "max_attempts": 6})


def by_key(items: list[Any]) -> dict[str, dict[str, Any]]:
    return {i.key: i.data for i in items if isinstance(i, Resource)}


def evidence(items: list[Any]) -> list[tuple[str, str, str]]:
    return sorted((r.kind, r.key, json.dumps(r.data, sort_keys=True))
                  for r in items if isinstance(r, Resource))
