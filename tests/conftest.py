"""Shared fixtures: a real moto server on loopback, and SQLite and PostgreSQL databases."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import requests

os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
logging.getLogger("werkzeug").setLevel(logging.WARNING)

PG_ADMIN_URL = os.environ.get("ANNEXA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    yield url
    server.stop()


@pytest.fixture
def moto_url(moto_server: str) -> str:
    """A moto server with empty state for this test."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    return moto_server


@pytest.fixture(scope="session")
def org_server():  # type: ignore[no-untyped-def]
    """A moto server of its own for AWS Organizations, behind a gate that can refuse
    AssumeRole into chosen accounts (tests/aws_org_support.py)."""
    from tests.aws_org_support import OrgServer

    server = OrgServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def org_url(org_server) -> str:  # type: ignore[no-untyped-def]
    """The organisation's server, emptied for this test."""
    org_server.reset()
    return org_server.url


def _pg_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database of each kind; PostgreSQL gets a throwaway database per test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'annexa.db'}"
        return
    if not _pg_available():
        pytest.fail("PostgreSQL is not listening on 127.0.0.1:5432 (.ci/run starts it)")
    import sqlalchemy as sa

    name = f"annexa_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
