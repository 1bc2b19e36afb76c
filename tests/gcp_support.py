"""Fixtures for the GCP tests: one loopback fake of Cloud Asset Inventory for the session,
reset and seeded with the sample organization (gaps-prod and gaps-lab with their planted
gaps, twin-prod without) for each test, and service-account key files whose self-signed JWTs
the fake verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.demo.emulators import gcp as fake
from collector.demo.emulators import gcp_sample as sample
from collector.demo.emulators import google_login
from collector.demo.emulators.server import FakeApi, ca_file
from collector.model import CollectionError, Resource, Scope
from connectors.gcp import Settings, collect

PAGE_SIZE = 3
GAPS, LAB, TWIN = "100000000001", "100000000003", "100000000002"


@pytest.fixture(scope="session")
def gcp_server() -> Iterator[fake.Cloud]:
    api = FakeApi("gcp", page_size=PAGE_SIZE).start()
    try:
        yield fake.install(api, google_login.Accounts())
    finally:
        api.stop()


@pytest.fixture
def cloud(gcp_server: fake.Cloud) -> fake.Cloud:
    """The fake with the sample organization and no faults, calls counted from zero."""
    gcp_server.reset()
    gcp_server.api.page_size = PAGE_SIZE
    gcp_server.add(sample.sample_org())
    return gcp_server


def source_options(cloud: fake.Cloud, tmp_path: Path, **parent: Any) -> dict[str, Any]:
    key = cloud.key_file(tmp_path / "gcp-sa.json")
    return {**(parent or {"organization": sample.ORG}), "credentials_file": str(key),
            "api_endpoint": cloud.api.url, "ca_bundle": str(ca_file()), "backoff": 0}


Observed = list[tuple[str, str, int, int]]


def collected(options: dict[str, Any], observed: Observed | None = None
              ) -> list[Scope | Resource | CollectionError]:
    """Everything the real connector yields for a source with these options."""
    def observe(service: str, operation: str, status: int, retries: int) -> None:
        if observed is not None:
            observed.append((service, operation, status, retries))

    return list(collect(Settings.model_validate(options), observe))


def of_kind(items: list[Any], kind: str) -> list[Resource]:
    return [i for i in items if isinstance(i, Resource) and i.kind == kind]


def scope_key(number: str) -> str:
    return sample.project_key(number)
