"""Fixtures for the Google Workspace tests: one loopback fake of the Admin SDK and the Cloud
Identity Policy API for the session, reset and seeded with the sample customers (Example Co
with its planted gaps, Example Twin without) for each test, and service-account key files that
the real google-auth exchanges at the fake's token endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.demo.emulators import google_login
from collector.demo.emulators import google_workspace as fake
from collector.demo.emulators.server import FakeApi, ca_file
from collector.model import CollectionError, Resource, Scope
from connectors.google_workspace import Settings, collect
from tests.helpers import errors, evidence

__all__ = ["errors", "evidence"]  # for the Workspace tests, which take them from here

GAPS, TWIN = fake.GAPS, fake.TWIN
ADMINS = {GAPS.id: "ada", TWIN.id: "alice"}
CHECKS = frozenset(fake.planted())
PAGE_SIZE = 2


@pytest.fixture(scope="session")
def workspace_server() -> Iterator[fake.Workspace]:
    api = FakeApi("google_workspace", page_size=PAGE_SIZE).start()
    try:
        yield fake.install(api, google_login.Accounts())
    finally:
        api.stop()


@pytest.fixture
def workspace(workspace_server: fake.Workspace) -> fake.Workspace:
    """The fake with both sample customers and no faults, calls counted from zero."""
    workspace_server.reset()
    workspace_server.api.page_size = PAGE_SIZE
    workspace_server.add(GAPS)
    workspace_server.add(TWIN)
    return workspace_server


def admin_email(tenant: fake.Tenant, name: str | None = None) -> str:
    return f"{name or ADMINS[tenant.id]}@{tenant.domain}"


def source_options(workspace: fake.Workspace, tmp_path: Path, tenant: fake.Tenant = GAPS,
                   admin: str | None = None, scopes: Any = None, **extra: Any
                   ) -> dict[str, Any]:
    email = admin_email(tenant, admin)
    key = workspace.key_file(tmp_path / f"sa-{tenant.id}-{email.split('@')[0]}.json", email,
                             scopes=scopes)
    return {"admin_email": email, "credentials_file": str(key),
            "api_endpoint": workspace.api.url, "ca_bundle": str(ca_file()), "backoff": 0,
            **extra}


Observed = list[tuple[str, str, int, int]]


def collected(options: dict[str, Any], observed: Observed | None = None
              ) -> list[Scope | Resource | CollectionError]:
    """Everything the real connector yields for a source with these options."""
    def observe(service: str, operation: str, status: int, retries: int) -> None:
        if observed is not None:
            observed.append((service, operation, status, retries))

    return list(collect(Settings.model_validate(options), observe))


def write_config(tmp_path: Path, database_url: str, sources: list[dict[str, Any]]) -> Path:
    cfg = {"database": database_url, "signing_key": str(tmp_path / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
           "sources": [{"kind": "google_workspace", "schedule": "1h", **s} for s in sources]}
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
