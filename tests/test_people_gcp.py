"""People across Google Workspace (the authoritative identity provider) and a GCP
organization, both collected by their real connectors from their loopback fakes: a `user:`
member of a project's, a bucket's or a key's IAM policy is that person's account there. A
suspended person's bindings are leftovers, an Owner without 2-Step Verification is named, and a
Project IAM Admin from outside the directory holds privilege through an unknown account."""

from __future__ import annotations

import yaml

from collector.demo.emulators import gcp
from collector.demo.emulators import google_workspace as workspace_fake
from collector.demo.emulators.gcp_sample import ORG, project_key
from collector.people.adapters.gcp import member_key
from tests.gcp_support import gcp_server
from tests.gcp_support import source_options as gcp_options
from tests.google_workspace_support import source_options, workspace_server
from tests.helpers import annexa, people_config, people_failing

__all__ = ["gcp_server", "workspace_server"]  # fixtures

DOMAIN = "example.net"
PEOPLE = workspace_fake.Tenant(
    id="C04gcppeople", domain=DOMAIN, name="People Co", org_units=(),
    people=(workspace_fake.Person("alice", super_admin=True),
            workspace_fake.Person("bob", enrolled=False),
            workspace_fake.Person("dana", suspended=True)))
OUTSIDER = "user:mallory@outside.example"


def _org() -> tuple[gcp.Org, dict[str, str]]:
    project = gcp.Project("people-prod", "200000000001", bindings={
        "roles/owner": [f"user:alice@{DOMAIN}", f"user:bob@{DOMAIN}", f"group:ops@{DOMAIN}"],
        "roles/viewer": [f"user:dana@{DOMAIN}", OUTSIDER,
                         "serviceAccount:ci@people-prod.iam.gserviceaccount.com",
                         f"deleted:user:erin@{DOMAIN}?uid=123456789"],
        "roles/resourcemanager.projectIamAdmin": [OUTSIDER]})
    bucket = project.bucket("people-exports", public=f"user:dana@{DOMAIN}")
    on_project = project_key(project.number)
    keys = {"alice": member_key(on_project, f"user:alice@{DOMAIN}"),
            "bob": member_key(on_project, f"user:bob@{DOMAIN}"),
            "dana": member_key(on_project, f"user:dana@{DOMAIN}"),
            "dana-bucket": member_key(bucket.name, f"user:dana@{DOMAIN}"),
            "outsider": member_key(on_project, OUTSIDER)}
    return gcp.Org(ORG, DOMAIN, {}, [project]), keys


def test_gcp_bindings_are_judged_as_their_persons_accounts(
        workspace_server, gcp_server, tmp_path, database_url, capsys):
    workspace_server.reset()
    workspace_server.add(PEOPLE)
    gcp_server.reset()
    org, keys = _org()
    gcp_server.add(org)
    config = people_config(capsys, tmp_path, database_url, [
        {"name": "workspace", "kind": "google_workspace", "schedule": "1h",
         "customer": PEOPLE.id,
         **source_options(workspace_server, tmp_path, PEOPLE, admin="alice")},
        {"name": "gcp-org", "kind": "gcp", "schedule": "1h", **gcp_options(gcp_server, tmp_path)},
    ], {"authoritative": "workspace"})
    assert people_failing(capsys, config) == {
        "people.leaver_holds_no_active_account": {keys["dana"], keys["dana-bucket"]},
        "people.account_belongs_to_active_person": {keys["dana"], keys["dana-bucket"],
                                                    keys["outsider"]},
        "people.privileged_account_has_mfa": {keys["bob"]},
        "people.privilege_held_through_known_account": {keys["outsider"]},
    }
    code, out, err = annexa(capsys, config, "people", "--person", f"alice@{DOMAIN}",
                            "--format", "json")
    assert code == 0, err
    [alice] = yaml.safe_load(out)
    [owner] = [a for a in alice["accounts"] if a["source"] == "gcp-org"]
    assert (owner["key"], owner["active"], owner["privileges"]) == (
        keys["alice"], True, ["GCP Owner"])
    assert annexa(capsys, config, "verify")[0] == 0
