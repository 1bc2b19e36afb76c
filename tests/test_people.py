"""People across sources, end to end: a Google Workspace customer (the authoritative identity
provider, served by its loopback fake) and an AWS account (the moto server) are collected by the
real connectors; the derived source `annexa-people` joins them from the store and its checks
name exactly the leftover, orphan and unprotected accounts. A source that fails to collect
never turns a verdict into a pass; a leaver's clean-up shows in snapshots and the timeline; the
ledger and a bundle verify."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml

from collector.cli import main
from collector.demo.emulators import google_workspace as fake
from tests.google_workspace_support import source_options, workspace_server
from tests.helpers import annexa, controls_json, failing_by_check

__all__ = ["workspace_server"]  # fixture

PEOPLE = fake.Tenant(
    id="C03people", domain="example.net", name="People Co", org_units=(),
    people=(fake.Person("alice", super_admin=True), fake.Person("bob", enrolled=False),
            fake.Person("carol", suspended=True), fake.Person("dave", suspended=True),
            fake.Person("erin")))
ACCOUNT = "123456789012"  # moto's account
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
CHECKS = ("people.leaver_holds_no_active_account", "people.account_belongs_to_active_person",
          "people.privileged_account_has_mfa", "people.privilege_held_through_known_account")


def arn(user: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{user}"


@pytest.fixture
def workspace(workspace_server: fake.Workspace) -> fake.Workspace:
    workspace_server.reset()
    workspace_server.add(PEOPLE)
    return workspace_server


def _seed_aws(moto_url: str) -> None:
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_url)

    def user(name: str, *, key: bool = True, admin: bool = False) -> None:
        iam.create_user(UserName=name)
        if key:
            iam.create_access_key(UserName=name)
        if admin:
            iam.attach_user_policy(UserName=name, PolicyArn=ADMIN)

    user("alice@example.net", admin=True)           # privileged, no MFA of its own in AWS
    user("carol@example.net")                       # a leaver whose key was switched off
    [key] = iam.list_access_keys(UserName="carol@example.net")["AccessKeyMetadata"]
    iam.update_access_key(UserName="carol@example.net", AccessKeyId=key["AccessKeyId"],
                          Status="Inactive")
    user("dave@example.net")                        # a leaver with a leftover key
    user("erin@example.net")                        # an active person's account
    user("zed")                                     # belongs to nobody
    user("break-glass", admin=True)                 # excused until its exception expired
    user("deploy-bot")                              # a non-human account, excused
    user("bob-ops", admin=True)                     # linked by the mapping file to bob (no 2SV)


def _config(tmp_path: Path, database_url: str, moto_url: str,
            workspace: fake.Workspace) -> Path:
    mapping = tmp_path / "people.yaml"
    mapping.write_text(yaml.safe_dump({
        "accounts": [{"source": "aws-test", "account": "bob-ops", "person": "bob@example.net"}],
        "exceptions": [
            {"source": "aws-test", "account": arn("break-glass"), "owner": "security@example.net",
             "reason": "break-glass account, credentials in the safe", "expires": "2020-06-30"},
            {"source": "aws-test", "account": "deploy-bot", "owner": "platform@example.net",
             "non_human": True, "expires": "2099-01-31"},
        ]}))
    cfg = {
        "database": database_url, "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
        "sources": [
            {"name": "workspace", "kind": "google_workspace", "schedule": "1h",
             "customer": PEOPLE.id,
             **source_options(workspace, tmp_path, PEOPLE, admin="alice")},
            {"name": "aws-test", "kind": "aws", "schedule": "1h", "regions": ["us-east-1"],
             "endpoint_url": moto_url, "max_attempts": 2},
        ],
        "people": {"authoritative": "workspace", "mapping": str(mapping)},
    }
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _people_checks(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]
            if c["id"] in CHECKS}


@pytest.fixture
def collected(tmp_path, database_url, moto_url, workspace, capsys, monkeypatch) -> Path:
    # moto loads AWS-managed policies (AdministratorAccess) into the next IAM backend.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    _seed_aws(moto_url)
    config = _config(tmp_path, database_url, moto_url, workspace)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    assert "people:" in out, out
    return config


def test_the_join_names_exactly_the_accounts_to_remove_or_fix(collected, capsys):
    failing = failing_by_check(controls_json(capsys, collected))
    assert {c: failing.get(c, set()) for c in CHECKS} == {
        "people.leaver_holds_no_active_account": {arn("dave@example.net")},
        "people.account_belongs_to_active_person": {arn("dave@example.net"), arn("zed"),
                                                    arn("break-glass")},
        "people.privileged_account_has_mfa": {arn("alice@example.net"), arn("bob-ops")},
        "people.privilege_held_through_known_account": {arn("break-glass")},
    }

    reasons = {f["reason"] for chk in _people_checks(capsys, collected).values()
               for f in chk["failures"]}
    assert any("dave@example.net is suspended in workspace" in r for r in reasons), reasons
    assert any("expired on 2020-06-30" in r for r in reasons), reasons
    assert any("bob@example.net has no MFA in workspace" in r for r in reasons), reasons


def test_the_access_review_lists_every_account_with_its_evidence(collected, capsys):
    code, out, err = annexa(capsys, collected, "people", "--format", "json")
    assert code == 0, err
    people = {p["person"]: p for p in json.loads(out)}
    assert set(people) == {f"{n}@example.net" for n in ("alice", "bob", "carol", "dave", "erin")}
    assert people["dave@example.net"]["status"] == "suspended"
    dave = {a["source"]: a for a in people["dave@example.net"]["accounts"]}
    assert dave["aws-test"]["key"] == arn("dave@example.net") and dave["aws-test"]["active"]
    assert dave["workspace"]["active"] is False
    carol = {a["source"]: a for a in people["carol@example.net"]["accounts"]}
    assert carol["aws-test"]["active"] is False
    bob = {a["key"]: a for a in people["bob@example.net"]["accounts"]}
    assert bob[arn("bob-ops")]["privileged"] is True
    assert all(len(a["evidence"]) == 64 for p in people.values() for a in p["accounts"])
    assert "report digest: sha256 " in err

    code, out, _ = annexa(capsys, collected, "people", "--privileged", "--format", "json")
    assert {p["person"] for p in json.loads(out)} == {"alice@example.net", "bob@example.net"}

    code, out, _ = annexa(capsys, collected, "people", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["person"], r["account"]) for r in rows} >= {
        ("dave@example.net", arn("dave@example.net")), ("bob@example.net", arn("bob-ops"))}

    code, out, _ = annexa(capsys, collected, "people", "--format", "html")
    assert code == 0 and "<table>" in out and arn("dave@example.net") in out


def test_a_source_that_fails_to_collect_never_turns_a_verdict_into_a_pass(
        collected, capsys, tmp_path):
    before = _people_checks(capsys, collected)
    cfg = yaml.safe_load(collected.read_text())
    cfg["sources"][1]["endpoint_url"] = "http://127.0.0.1:9"  # nothing listens there
    cfg["sources"][1]["max_attempts"] = 1
    collected.write_text(yaml.safe_dump(cfg))
    assert annexa(capsys, collected, "collect")[0] != 0

    after = _people_checks(capsys, collected)
    for check_id in CHECKS:
        # Failures stay, with their evidence; what passed on AWS accounts is not judged again.
        assert after[check_id]["failing_resources"] == before[check_id]["failing_resources"]
        assert after[check_id]["resources"].get("pass", 0) <= before[check_id]["resources"].get(
            "pass", 0)
    belongs = after["people.account_belongs_to_active_person"]
    assert belongs["status"] == "fail"
    assert any(e.startswith(arn("erin@example.net")) for e in belongs["errors"]), belongs
    assert not any(e.startswith(arn("erin@example.net"))
                   for e in before["people.account_belongs_to_active_person"]["errors"])


def test_a_leavers_clean_up_shows_in_snapshots_and_the_timeline(collected, moto_url, capsys):
    dirty_at = datetime.now(UTC).isoformat()
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_url)
    for key in iam.list_access_keys(UserName="dave@example.net")["AccessKeyMetadata"]:
        iam.delete_access_key(UserName="dave@example.net", AccessKeyId=key["AccessKeyId"])
    assert annexa(capsys, collected, "collect")[0] == 0

    failing = failing_by_check(controls_json(capsys, collected))
    assert failing["people.leaver_holds_no_active_account"] == set()

    def leaver_check(at: str) -> dict:
        code, out, err = annexa(capsys, collected, "snapshot", "--at", at, "--control", "A.6.5",
                                "--format", "json")
        assert code == 0, err
        doc = json.loads(out)
        [chk] = [c for ctl in doc["controls"] for c in ctl["checks"]
                 if c["id"] == "people.leaver_holds_no_active_account"]
        return chk

    assert leaver_check(dirty_at)["status"] == "fail"
    assert leaver_check(datetime.now(UTC).isoformat())["status"] == "pass"

    code, out, err = annexa(capsys, collected, "people", "--person", "dave@example.net",
                            "--history", "--format", "json")
    assert code == 0, err
    timeline = json.loads(out)
    assert timeline["left_at"] is not None
    aws = {a["key"]: a for a in timeline["accounts"]}[arn("dave@example.net")]
    assert aws["removed_at"] is not None and aws["gap_hours"] is not None

    assert annexa(capsys, collected, "verify")[0] == 0
    bundle = collected.parent / "bundle.zip"
    until = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    code, _, err = annexa(capsys, collected, "export", "--from", "2020-01-01", "--to", until,
                          "--out", str(bundle))
    assert code == 0, err
    capsys.readouterr()
    assert main(["verify-bundle", str(bundle)]) == 0, capsys.readouterr().out


def test_a_broken_mapping_file_is_refused_naming_the_entry(collected, capsys):
    cfg = yaml.safe_load(collected.read_text())
    Path(cfg["people"]["mapping"]).write_text(yaml.safe_dump(
        {"exceptions": [{"source": "aws-test", "account": "zed", "owner": "nobody"}]}))
    code, _, err = annexa(capsys, collected, "collect")
    assert code == 2
    assert "people.mapping" in err and "exceptions[0]" in err, err
