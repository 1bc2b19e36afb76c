"""The Graph permissions shipped in config/entra/ are exactly what the connector needs: granted
those, the demo tenant is collected without an error; without any one of them, some listing
is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.demo.emulators import DEMO_CLIENT_ID, entra
from collector.model import CollectionError
from tests.entra_support import EntraFake, entra_fake, entra_server

__all__ = ["entra_fake", "entra_server"]

PERMISSIONS = json.loads((Path(__file__).parent.parent / "config" / "entra" /
                          "graph-permissions.json").read_text())
NAMES = [p["name"] for p in PERMISSIONS["permissions"]]


def _refused(fake: EntraFake, granted: set[str]) -> set[str]:
    fake.directory.roles[DEMO_CLIENT_ID] = granted
    try:
        items = fake.collect()
    finally:
        fake.directory.roles[DEMO_CLIENT_ID] = set(entra.GRANTED)
    errors = [i for i in items if isinstance(i, CollectionError)]
    assert all("HTTP 403 Authorization_RequestDenied" in e.message for e in errors), errors
    return {e.service for e in errors}


def test_the_shipped_permissions_are_the_demo_apps_and_each_says_why() -> None:
    assert sorted(NAMES) == sorted(entra.GRANTED)
    for permission in PERMISSIONS["permissions"]:
        assert permission["type"] == "Role" and len(permission["id"]) == 36
        assert permission["calls"] and permission["why"], permission["name"]


def test_granted_exactly_those_the_tenant_is_collected_without_an_error(
        entra_fake: EntraFake) -> None:
    assert _refused(entra_fake, set(NAMES)) == set()


# The listings each permission admits (users with signInActivity need both of theirs).
NEEDED_BY = {
    "User.Read.All": {"users"},
    "AuditLog.Read.All": {"users"},
    "Policy.Read.All": {"conditionalAccess", "securityDefaults", "authorizationPolicy"},
    "RoleManagement.Read.Directory": {"roleDefinitions", "roleAssignments"},
    "Application.Read.All": {"applications", "servicePrincipals"},
}


@pytest.mark.parametrize("dropped", NAMES)
def test_each_permission_is_needed(entra_fake: EntraFake, dropped: str) -> None:
    assert _refused(entra_fake, set(NAMES) - {dropped}) == NEEDED_BY[dropped]
