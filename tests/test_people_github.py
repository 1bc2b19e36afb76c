"""People across Google Workspace (the authoritative identity provider) and a GitHub
organisation, both collected by their real connectors from their loopback fakes: GitHub logins
link to people through the mapping file; a suspended person's membership is a leftover, an
owner without 2-Step Verification in the IdP is named, and an outside collaborator with admin
whom nobody owns holds privilege through an unknown account."""

from __future__ import annotations

import yaml

from collector.demo.emulators import google_workspace as fake
from tests.github_support import github_fake, github_server
from tests.google_workspace_support import source_options, workspace_server
from tests.helpers import annexa, people_config, people_failing

__all__ = ["github_fake", "github_server", "workspace_server"]  # fixtures

PEOPLE = fake.Tenant(
    id="C04people", domain="example.net", name="People Co", org_units=(),
    people=(fake.Person("alice", super_admin=True), fake.Person("bob", enrolled=False),
            fake.Person("carol"), fake.Person("dana", suspended=True), fake.Person("erin")))


def test_github_accounts_are_judged_as_their_persons(workspace_server, github_fake, tmp_path,
                                                     database_url, capsys):
    workspace_server.reset()
    workspace_server.add(PEOPLE)
    mapping = tmp_path / "people.yaml"
    mapping.write_text(yaml.safe_dump({"accounts": [
        {"source": "github-test", "account": login, "person": f"{login}@example.net"}
        for login in ("alice", "bob", "carol", "dana", "erin")]}))
    config = people_config(capsys, tmp_path, database_url, [
        {"name": "workspace", "kind": "google_workspace", "schedule": "1h",
         "customer": PEOPLE.id,
         **source_options(workspace_server, tmp_path, PEOPLE, admin="alice")},
        {**github_fake.source(), "schedule": "1h", "max_attempts": 4},
    ], {"authoritative": "workspace", "mapping": str(mapping)})
    assert people_failing(capsys, config) == {
        "people.leaver_holds_no_active_account": {"github:member:dana"},
        "people.account_belongs_to_active_person": {"github:member:dana",
                                                    "github:collaborator:contractor-x",
                                                    "github:collaborator:auditor-y"},
        "people.privileged_account_has_mfa": {"github:member:bob"},
        "people.privilege_held_through_known_account": {"github:collaborator:contractor-x"},
    }
    assert annexa(capsys, config, "verify")[0] == 0
