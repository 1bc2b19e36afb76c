"""IAM Identity Center through the AWS connector, against the moto server: each user is one
record with the permission sets it holds in each account, directly or through a group; a
denied listing is a collection error for the kinds, never users shown without assignments.
Joined with Google Workspace (the authoritative identity provider, on its loopback fake), a
suspended person's user that is still assigned is a leftover, one whose assignments were
removed is not, and a user nobody in the directory knows holding AdministratorAccess holds
privilege through an unknown account."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import yaml

import connectors.aws as aws
from collector.demo.emulators import google_workspace as fake
from collector.model import Resource
from collector.people.adapters.aws_identity_center import identity_center_user
from connectors.aws.svc_identity_center import KINDS, PERMISSION_SET, USER, user_key
from tests.google_workspace_support import source_options, workspace_server
from tests.helpers import (
    PEOPLE_CHECKS,
    REGIONS,
    annexa,
    by_key,
    controls_json,
    errors,
    people_config,
    people_failing,
)
from tests.test_absent_kinds import iam_enforced
from tests.test_aws_policy import ACTION_OF, SERVICE_PREFIX, _actions

__all__ = ["iam_enforced", "workspace_server"]  # fixtures

ACCOUNT = "123456789012"  # moto's account
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
S3_ONLY = {"Version": "2012-10-17",
           "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
EVERYTHING = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "NotAction": "s3:DeleteBucket",
                             "Resource": "*"},
                            {"Effect": "Allow", "Action": "s3:DeleteBucket", "Resource": "*"}]}
DOMAIN = "example.net"


@dataclass
class Center:
    """Moto's Identity Center instance of one region, and what is made in it."""

    sso: Any
    store: Any
    instance: str
    store_id: str

    @classmethod
    def of(cls, moto_url: str, region: str = REGIONS[0]) -> Center:
        sso = boto3.client("sso-admin", region_name=region, endpoint_url=moto_url)
        [instance] = sso.list_instances()["Instances"]
        return cls(sso, boto3.client("identitystore", region_name=region, endpoint_url=moto_url),
                   instance["InstanceArn"], instance["IdentityStoreId"])

    def user(self, name: str, *emails: str) -> str:
        addresses = [{"Value": e, "Type": "work", "Primary": i == 0}
                     for i, e in enumerate(emails)]
        return str(self.store.create_user(
            IdentityStoreId=self.store_id, UserName=name, DisplayName=name,
            Name={"GivenName": name, "FamilyName": "Example"},
            **({"Emails": addresses} if addresses else {}))["UserId"])

    def key(self, user_id: str) -> str:
        return user_key(self.store_id, user_id)

    def group(self, name: str, *members: str) -> str:
        group = str(self.store.create_group(IdentityStoreId=self.store_id,
                                            DisplayName=name)["GroupId"])
        for member in members:
            self.store.create_group_membership(IdentityStoreId=self.store_id, GroupId=group,
                                               MemberId={"UserId": member})
        return group

    def permission_set(self, name: str, *managed: str, inline: Any = None) -> str:
        arn = str(self.sso.create_permission_set(
            InstanceArn=self.instance, Name=name)["PermissionSet"]["PermissionSetArn"])
        for policy in managed:
            self.sso.attach_managed_policy_to_permission_set(
                InstanceArn=self.instance, PermissionSetArn=arn, ManagedPolicyArn=policy)
        if inline is not None:
            self.sso.put_inline_policy_to_permission_set(
                InstanceArn=self.instance, PermissionSetArn=arn, InlinePolicy=json.dumps(inline))
        return arn

    def _assignment(self, permission_set: str, principal: str, kind: str) -> dict[str, str]:
        return {"InstanceArn": self.instance, "TargetId": ACCOUNT, "TargetType": "AWS_ACCOUNT",
                "PermissionSetArn": permission_set, "PrincipalType": kind,
                "PrincipalId": principal}

    def assign(self, permission_set: str, principal: str, kind: str = "USER") -> None:
        self.sso.create_account_assignment(**self._assignment(permission_set, principal, kind))
        # AWS provisions a permission set to the account with its first assignment there;
        # moto leaves that to an explicit call.
        self.sso.provision_permission_set(InstanceArn=self.instance,
                                          PermissionSetArn=permission_set,
                                          TargetType="AWS_ACCOUNT", TargetId=ACCOUNT)

    def unassign(self, permission_set: str, principal: str, kind: str = "USER") -> None:
        self.sso.delete_account_assignment(**self._assignment(permission_set, principal, kind))


def _collect(moto_url: str, observer: Any = None) -> list[Any]:
    return list(aws.collect(aws.Settings(regions=REGIONS, endpoint_url=moto_url,
                                         max_attempts=1), observer))


def _identity(items: list[Any], key: str) -> Any:
    [identity] = identity_center_user(key, by_key(items)[key])
    return identity


def test_users_are_collected_with_what_they_hold_in_each_account(moto_url: str) -> None:
    center = Center.of(moto_url)
    alice = center.user("alice", f"alice@{DOMAIN}", "a.l@other.example")
    bob = center.user("bob@example.net", f"bob@{DOMAIN}")
    carol = center.user("carol")
    dave = center.user("dave", f"dave@{DOMAIN}")
    read_only = center.permission_set("ReadOnly", READ_ONLY, inline=S3_ONLY)
    admin = center.permission_set("Admin", ADMIN)
    everything = center.permission_set("Everything", inline=EVERYTHING)
    center.assign(read_only, alice)
    admins = center.group("Admins", bob, alice)
    center.group("Unassigned", carol)
    center.assign(admin, admins, "GROUP")
    center.assign(everything, dave)

    calls: set[tuple[str, str]] = set()
    items = _collect(moto_url, lambda svc, op, _s, _r: calls.add((svc, op)))
    assert errors(items) == []
    found = by_key(items)
    users = {k: d for k, d in found.items() if k.startswith("aws:identity_center:")}
    assert set(users) == {center.key(u) for u in (alice, bob, carol, dave)}, \
        "the other region's instance has no users"

    record = found[center.key(alice)]
    assert (record["UserName"], record["IdentityStoreId"], record["InstanceArn"]) == (
        "alice", center.store_id, center.instance)
    assert [e["Value"] for e in record["Emails"]] == [f"alice@{DOMAIN}", "a.l@other.example"]
    assert "Title" not in record, "attributes the store leaves empty are not recorded"
    assert sorted((a["AccountId"], a["PermissionSetName"], (a["Group"] or {}).get("DisplayName"))
                  for a in record["Assignments"]) == [(ACCOUNT, "Admin", "Admins"),
                                                      (ACCOUNT, "ReadOnly", None)]
    sets = {s["Name"]: s for s in record["PermissionSets"]}
    assert sets["ReadOnly"]["ManagedPolicies"] == [{"Name": "ReadOnlyAccess", "Arn": READ_ONLY}]
    assert sets["ReadOnly"]["InlinePolicy"] == S3_ONLY
    assert sets["Admin"]["InlinePolicy"] is None
    assert found[center.key(carol)]["Assignments"] == []
    assert found[center.key(carol)]["PermissionSets"] == []

    permission_sets = [i for i in items if isinstance(i, Resource) and i.kind == PERMISSION_SET]
    assert {(p.key, p.region) for p in permission_sets} == {
        (read_only, REGIONS[0]), (admin, REGIONS[0]), (everything, REGIONS[0])}
    assert found[everything]["InlinePolicy"] == EVERYTHING
    assert found[everything]["CustomerManagedPolicyReferences"] == []

    # Every call it made is allowed by the shipped least-privilege policy.
    needed = {ACTION_OF.get(c, f"{SERVICE_PREFIX.get(c[0], c[0])}:{c[1]}") for c in calls
              if c[0] in ("sso-admin", "identitystore")}
    assert len(needed) == 11 and needed - _actions() == set()

    # As accounts of people: usable while assigned; full admin by the AWS-managed policy or by
    # an inline policy that grants everything however it is written.
    got = {name: _identity(items, center.key(u)) for name, u in
           (("alice", alice), ("bob", bob), ("carol", carol), ("dave", dave))}
    assert {n: (i.active, i.privileges) for n, i in got.items()} == {
        "alice": (True, (f"full admin in {ACCOUNT}",)),
        "bob": (True, (f"full admin in {ACCOUNT}",)),
        "carol": (False, ()),
        "dave": (True, (f"full admin in {ACCOUNT}",)),
    }
    assert got["alice"].why_active == (f"assigned Admin in {ACCOUNT} through group Admins; "
                                       f"ReadOnly in {ACCOUNT}")
    assert {"email:alice@example.net", "email:a.l@other.example", "login:alice"} <= \
        got["alice"].identifiers
    assert "email:bob@example.net" in got["bob"].identifiers
    assert {i.mfa for i in got.values()} == {None}


def test_a_user_only_read_only_is_not_privileged_and_a_disabled_one_is_not_usable(
        moto_url: str) -> None:
    center = Center.of(moto_url)
    erin = center.user("erin", f"erin@{DOMAIN}")
    center.assign(center.permission_set("ReadOnly", READ_ONLY, inline=S3_ONLY), erin)
    items = _collect(moto_url)
    erin_key = center.key(erin)
    identity = _identity(items, erin_key)
    assert (identity.active, identity.privileged) == (True, False)
    [disabled] = identity_center_user(erin_key, {**by_key(items)[erin_key],
                                                 "UserStatus": "DISABLED"})
    assert (disabled.active, disabled.why_active) == (False, "")


def _deny(moto_url: str, *actions: str) -> dict[str, str]:
    """The access key of an IAM user `annexa-reader` that may do everything but `actions`."""
    iam = boto3.client("iam", region_name=REGIONS[0], endpoint_url=moto_url)
    iam.create_user(UserName="annexa-reader")
    iam.put_user_policy(UserName="annexa-reader", PolicyName="reader", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": list(actions), "Resource": "*"}]}))
    key = iam.create_access_key(UserName="annexa-reader")["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.mark.parametrize(("denied", "regions"), [
    ("sso:ListInstances", set(REGIONS)),
    # Denied half-way, in the region whose permission sets are assigned.
    ("sso:ListAccountAssignments", {REGIONS[0]}),
])
def test_a_denied_call_is_an_error_for_the_kinds_never_users_without_assignments(
        moto_url: str, iam_enforced, monkeypatch: pytest.MonkeyPatch, denied: str,
        regions: set[str]) -> None:
    center = Center.of(moto_url)
    center.assign(center.permission_set("Admin", ADMIN), center.user("alice", f"alice@{DOMAIN}"))
    for name, value in _deny(moto_url, denied).items():
        monkeypatch.setenv(name, value)
    iam_enforced()
    items = _collect(moto_url)
    failed = [e for e in errors(items) if e.service == "sso-admin"]
    assert {e.region for e in failed} == regions
    assert all(e.kinds == KINDS and "AccessDenied" in e.message for e in failed), failed
    assert not [i for i in items if isinstance(i, Resource) and i.kind == USER]


# --- joined with the identity provider -----------------------------------------------------

PEOPLE = fake.Tenant(
    id="C05icpeople", domain=DOMAIN, name="People Co", org_units=(),
    people=(fake.Person("alice", super_admin=True), fake.Person("bob", enrolled=False),
            fake.Person("carol", suspended=True), fake.Person("dave", suspended=True)))
READER = "annexa-reader"


def _people_sources(workspace: fake.Workspace, tmp_path: Any, moto_url: str) -> list[dict]:
    return [
        {"name": "workspace", "kind": "google_workspace", "schedule": "1h",
         "customer": PEOPLE.id, **source_options(workspace, tmp_path, PEOPLE, admin="alice")},
        {"name": "aws-test", "kind": "aws", "schedule": "1h", "regions": [REGIONS[0]],
         "endpoint_url": moto_url, "max_attempts": 1},
    ]


def _checks(capsys: pytest.CaptureFixture[str], config: Any) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]
            if c["id"] in PEOPLE_CHECKS}


def test_identity_center_users_are_judged_as_their_persons_accounts(
        workspace_server, moto_url, tmp_path, database_url, capsys, iam_enforced,
        monkeypatch) -> None:
    workspace_server.reset()
    workspace_server.add(PEOPLE)
    center = Center.of(moto_url)
    admin = center.permission_set("Admin", ADMIN)
    read_only = center.permission_set("ReadOnly", READ_ONLY)
    users = {name: center.user(name, f"{name}@{DOMAIN}") for name in ("alice", "bob", "carol",
                                                                       "dave")}
    users["mallory"] = center.user("mallory", "mallory@outside.example")
    center.assign(admin, center.group("Admins", users["alice"], users["bob"]), "GROUP")
    center.assign(read_only, users["carol"])    # a leaver still assigned
    center.assign(read_only, users["dave"])     # a leaver whose assignment was removed
    center.unassign(read_only, users["dave"])
    center.assign(admin, users["mallory"])      # nobody the directory knows
    key = {name: center.key(user_id) for name, user_id in users.items()}
    reader = _deny(moto_url, "sso:ListAccountAssignments")
    mapping = tmp_path / "people.yaml"
    mapping.write_text(yaml.safe_dump({"exceptions": [
        {"source": "aws-test", "account": READER, "owner": f"security@{DOMAIN}",
         "non_human": True, "expires": "2099-01-31"}]}))
    config = people_config(capsys, tmp_path, database_url,
                           _people_sources(workspace_server, tmp_path, moto_url),
                           {"authoritative": "workspace", "mapping": str(mapping)})

    assert people_failing(capsys, config) == {
        "people.leaver_holds_no_active_account": {key["carol"]},
        "people.account_belongs_to_active_person": {key["carol"], key["mallory"]},
        "people.privileged_account_has_mfa": {key["bob"]},
        "people.privilege_held_through_known_account": {key["mallory"]},
    }
    checks = _checks(capsys, config)
    reasons = {(c["id"].removeprefix("people."), f["resource"]): f["reason"]
               for c in checks.values() for f in c["failures"]}
    leftover = reasons["leaver_holds_no_active_account", key["carol"]]
    assert f"carol@{DOMAIN} is suspended in workspace" in leftover
    assert f"carol (Identity Center) is still usable: assigned ReadOnly in {ACCOUNT}" in leftover
    assert "belongs to no person the identity provider knows" in reasons[
        "privilege_held_through_known_account", key["mallory"]]
    assert f"bob@{DOMAIN} has no MFA in workspace" in reasons[
        "privileged_account_has_mfa", key["bob"]]
    assert checks["people.leaver_holds_no_active_account"]["resources"]["pass"] == 1  # dave

    code, out, err = annexa(capsys, config, "people", "--person", f"alice@{DOMAIN}",
                            "--format", "json")
    assert code == 0, err
    [alice] = json.loads(out)
    [account] = [a for a in alice["accounts"] if a["key"] == key["alice"]]
    assert (account["source"], account["active"], account["privileged"]) == (
        "aws-test", True, True)

    # Assignments that cannot be listed: carol's failure stays on its evidence, and dave's
    # pass is not said again from what nobody saw. IAM, read in the same run, is judged
    # afresh: dave's IAM user (no password, no key) is not a leftover, erin's (a key) is.
    iam = boto3.client("iam", region_name=REGIONS[0], endpoint_url=moto_url)
    iam.create_user(UserName=f"dave@{DOMAIN}")
    iam.create_user(UserName=f"erin@{DOMAIN}")
    iam.create_access_key(UserName=f"erin@{DOMAIN}")
    workspace_server.add(fake.Tenant(id=PEOPLE.id, domain=DOMAIN, name=PEOPLE.name,
                                     org_units=(), people=(*PEOPLE.people,
                                                           fake.Person("erin", suspended=True))))
    for name, value in reader.items():
        monkeypatch.setenv(name, value)
    iam_enforced()
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    [denial] = [line for line in out.splitlines() if "error: sso-admin in us-east-1" in line]
    assert "not authorized to perform: sso:ListAccountAssignments" in denial
    leaver = _checks(capsys, config)["people.leaver_holds_no_active_account"]
    erin = f"arn:aws:iam::{ACCOUNT}:user/erin@{DOMAIN}"
    assert sorted(leaver["failing_resources"]) == sorted([key["carol"], erin])
    assert leaver["resources"].get("pass") == 1, leaver["resources"]  # dave's IAM user
    assert any(e.startswith(key["dave"]) for e in leaver["errors"]), leaver["errors"]
