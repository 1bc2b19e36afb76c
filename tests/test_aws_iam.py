"""IAM and KMS against a real moto server: every planted gap fails, good resources pass, and a
denied detail call turns the checks that need it into `error`, never `pass`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest
import requests

import connectors.aws
from checks.registry import REGISTRY, load_all
from collector.demo import seed_iam
from collector.demo.seed import ACCOUNT, Planted, plant
from collector.evaluate import Outcome, evaluate_all
from collector.model import CollectionError, Resource
from connectors.aws import Settings

REGIONS = ["eu-west-1", "us-east-1"]
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
PASSWORD_POLICY = f"arn:aws:iam::{ACCOUNT}:password-policy"
MY_CHECKS = ("aws.iam.", "aws.kms.")
MY_SERVICES = ("iam", "kms")
STALE_DAYS = 200

load_all()


def user(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:user/{name}"


def seed(moto_url: str) -> Planted:
    planted: Planted = {}
    seed_iam.seed(
        lambda service, region: boto3.client(service, region_name=region, endpoint_url=moto_url),
        REGIONS, planted,
    )
    return planted


def backdate(planted: Planted) -> None:
    """The IAM API cannot set creation dates, so age the leaver's password and the old batch
    job's key inside the in-process emulator, and expect what a real account would show."""
    from moto.iam.models import iam_backends

    users = iam_backends[ACCOUNT]["aws"].users
    for name in ("dave", "legacy-etl"):
        users[name].create_date -= timedelta(days=STALE_DAYS)
        for key in users[name].access_keys:
            key.create_date -= timedelta(days=STALE_DAYS)
    plant(planted, "aws.iam.user_unused_credentials_disabled", user("dave"))
    plant(planted, "aws.iam.user_unused_credentials_disabled", user("legacy-etl"))
    plant(planted, "aws.iam.user_access_keys_rotated", user("legacy-etl"))


def collect(moto_url: str, observer=None) -> list:
    return list(connectors.aws.collect(Settings(regions=REGIONS, endpoint_url=moto_url),
                                       observer))


def mine(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.check.id.startswith(MY_CHECKS)]


def verdicts(outcomes: list[Outcome]) -> dict[tuple[str, str], str]:
    return {(o.check.id, o.subject): o.verdict.status for o in mine(outcomes)}


def assert_failures_are_planted(outcomes: list[Outcome], planted: Planted) -> None:
    ids = [c for c in REGISTRY if c.startswith(MY_CHECKS)]
    assert len(ids) == 15
    for check_id in ids:
        got = {o.subject for o in outcomes if o.check.id == check_id and o.verdict.status == "fail"}
        assert got == planted.get(check_id, set()), check_id
    errors = [(o.check.id, o.subject, o.verdict.reason) for o in mine(outcomes)
              if o.verdict.status == "error"]
    assert errors == []


@pytest.fixture
def managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto loads AWS-managed policies (AdministratorAccess...) into the next IAM backend."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def test_planted_failures_and_good_resources(moto_url: str, managed_policies: None) -> None:
    planted = seed(moto_url)
    backdate(planted)
    items = collect(moto_url)
    outcomes = evaluate_all(items)
    assert_failures_are_planted(outcomes, planted)

    status = verdicts(outcomes)
    for check_id in ("user_console_mfa_enabled", "user_unused_credentials_disabled",
                     "user_has_no_direct_admin_rights", "user_permissions_granted_through_groups"):
        assert status[(f"aws.iam.{check_id}", user("alice"))] == "pass"
    assert status[("aws.iam.user_access_keys_rotated", user("ci-deploy"))] == "pass"
    assert status[("aws.iam.user_access_keys_rotated", user("alice"))] == "not_applicable"
    assert status[("aws.iam.user_console_mfa_enabled", user("ci-deploy"))] == "not_applicable"
    assert status[("aws.iam.root_account_has_no_access_keys", ROOT)] == "pass"
    role = f"arn:aws:iam::{ACCOUNT}:role/"
    assert status[("aws.iam.role_trust_policy_not_public", role + "org-readonly")] == "pass"
    assert status[("aws.iam.role_trust_policy_not_public", role + "app-server")] == "pass"
    developer = f"arn:aws:iam::{ACCOUNT}:policy/DeveloperAccess"
    assert status[("aws.iam.policy_grants_no_full_admin", developer)] == "pass"

    keys = {r.data["Aliases"][0]: r for r in items
            if isinstance(r, Resource) and r.kind == "aws.kms.key" and r.region == "us-east-1"}
    assert set(keys) == {"alias/app-data", "alias/legacy-backups", "alias/release-signing"}
    assert status[("aws.kms.key_rotation_enabled", keys["alias/app-data"].key)] == "pass"
    assert status[("aws.kms.key_rotation_enabled",
                   keys["alias/release-signing"].key)] == "not_applicable"


def test_without_aws_managed_policies_the_same_gaps_are_planted(moto_url: str) -> None:
    planted = seed(moto_url)
    assert_failures_are_planted(evaluate_all(collect(moto_url)), planted)


def test_resources_are_json_without_secrets_and_cheap(moto_url: str) -> None:
    seed(moto_url)
    calls: Counter[str] = Counter()
    items = collect(moto_url, lambda service, op, status, retries: calls.update([service]))
    resources = [r for r in items if isinstance(r, Resource)]
    by_key = {r.key: r for r in resources}
    assert not [i for i in items if isinstance(i, CollectionError) and i.service in MY_SERVICES]

    text = json.dumps([r.data for r in resources])  # raises on anything not JSON
    assert "SecretAccessKey" not in text and "Demo-only-password" not in text

    account = by_key[ROOT]
    assert (account.kind, account.region) == ("aws.iam.account", "global")
    assert account.data["summary"]["AccountMFAEnabled"] == 0
    assert account.data["root_credential_report"] is None  # moto's report has no root row
    assert by_key[PASSWORD_POLICY].data["policy"]["MinimumPasswordLength"] == 8

    ci = by_key[user("ci-deploy")].data
    report = ci["credential_report"]
    assert report["password_enabled"] is False
    [key] = report["access_keys"]
    assert key["active"] and key["last_used_date"] and key["last_rotated"]
    assert ci["UserPolicyList"][0]["PolicyDocument"]["Statement"][0]["Action"] == "*"
    alice = by_key[user("alice")].data
    assert alice["GroupList"] == ["admins"] and alice["credential_report"]["mfa_active"]

    policy = by_key[f"arn:aws:iam::{ACCOUNT}:policy/OrgAdmin"].data
    assert policy["DefaultVersion"]["Document"]["Statement"][0]["Resource"] == "*"
    role = by_key[f"arn:aws:iam::{ACCOUNT}:role/app-server"].data
    assert role["InstanceProfileArns"] == [f"arn:aws:iam::{ACCOUNT}:instance-profile/app-server"]
    kinds = Counter(r.kind for r in resources)
    assert kinds["aws.iam.group"] == 2 and kinds["aws.kms.key"] == 7

    iam_resources = sum(n for k, n in kinds.items() if k.startswith("aws.iam."))
    # report (generate twice in moto, get once), summary, password policy, two details pages
    assert calls["iam"] == 7 < iam_resources
    # per region: list_aliases, list_keys; per key describe_key; rotation for enabled symmetric
    assert calls["kms"] == 2 * len(REGIONS) + kinds["aws.kms.key"] + 2 * len(REGIONS)


def test_root_access_keys_fail(moto_url: str) -> None:
    """moto never reports root access keys, so judge its real account record with one set."""
    account = next(r for r in collect(moto_url) if isinstance(r, Resource) and r.key == ROOT)
    data = {**account.data, "summary": {**account.data["summary"], "AccountAccessKeysPresent": 1}}
    assert REGISTRY["aws.iam.root_account_has_no_access_keys"].evaluate(data).status == "fail"


@pytest.fixture
def as_restricted_user(moto_url: str, monkeypatch: pytest.MonkeyPatch):
    """Collect as a user whom an explicit Deny keeps from the given actions (moto enforces IAM
    from the next request until the fixture ends)."""

    def restrict(*denied: str) -> None:
        iam = boto3.client("iam", region_name=REGIONS[0], endpoint_url=moto_url)
        iam.create_user(UserName="annexa-reader")
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": list(denied), "Resource": "*"},
        ]}
        iam.put_user_policy(UserName="annexa-reader", PolicyName="reader",
                            PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="annexa-reader")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        requests.post(f"{moto_url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()

    yield restrict
    requests.post(f"{moto_url}/moto-api/reset-auth", data=b"inf", timeout=10).raise_for_status()


def _statuses(outcomes: list[Outcome], check_id: str) -> Iterator[tuple[str, str]]:
    return ((o.subject, o.verdict.status) for o in outcomes if o.check.id == check_id)


def test_denied_detail_calls_make_their_checks_error(moto_url: str, as_restricted_user) -> None:
    planted = seed(moto_url)
    as_restricted_user("iam:GenerateCredentialReport", "iam:GetAccountPasswordPolicy",
                       "kms:GetKeyRotationStatus")
    outcomes = evaluate_all(collect(moto_url))

    for check_id in ("aws.iam.user_console_mfa_enabled", "aws.iam.user_access_keys_rotated",
                     "aws.iam.user_unused_credentials_disabled",
                     "aws.iam.password_policy_strong"):
        results = dict(_statuses(outcomes, check_id))
        assert results and set(results.values()) == {"error"}, check_id
    rotation = Counter(status for _, status in _statuses(outcomes, "aws.kms.key_rotation_enabled"))
    assert rotation == {"error": 2 * len(REGIONS), "not_applicable": len(REGIONS) + 1}
    # what did not depend on the denied calls is judged as before
    admin = {s for s, st in _statuses(outcomes, "aws.iam.user_has_no_direct_admin_rights")
             if st == "fail"}
    assert admin == planted["aws.iam.user_has_no_direct_admin_rights"] | {user("annexa-reader")}
    assert dict(_statuses(outcomes, "aws.iam.root_account_mfa_enabled")) == {ROOT: "fail"}


def test_denied_authorization_details_is_a_collection_error(moto_url: str,
                                                            as_restricted_user) -> None:
    seed(moto_url)
    as_restricted_user("iam:GetAccountAuthorizationDetails")
    items = collect(moto_url)
    [error] = [i for i in items if isinstance(i, CollectionError) and i.service in MY_SERVICES]
    assert (error.service, error.region) == ("iam", "*") and "AccessDenied" in error.message
    outcomes = evaluate_all(items)
    assert dict(_statuses(outcomes, "aws.iam.user_console_mfa_enabled")) == {
        f"{ROOT}#*": "error"}


def test_full_admin_by_every_path_is_named_through_the_connector(moto_url: str) -> None:
    """Customer-managed, NotAction and NotResource grants, attached to a user, through a
    group and to a role, judged on what the connector joins onto each principal."""
    iam = boto3.client("iam", region_name=REGIONS[0], endpoint_url=moto_url)
    star = iam.create_policy(PolicyName="Star", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*:*",
                                                 "Resource": "*"}]}))["Policy"]["Arn"]
    but_one = iam.create_policy(PolicyName="AllButOneBucket", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                 "NotResource": "arn:aws:s3:::audit"}]}
    ))["Policy"]["Arn"]
    # Full admin in version 1 only: the default version 2 is what holders get.
    retired = iam.create_policy(PolicyName="Retired", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "NotAction": "s3:Put*",
                                                 "Resource": "*"}]}))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=retired, SetAsDefault=True, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*",
                                                 "Resource": "*"}]}))
    iam.create_user(UserName="ops")
    iam.attach_user_policy(UserName="ops", PolicyArn=star)
    iam.create_group(GroupName="platform")
    iam.attach_group_policy(GroupName="platform", PolicyArn=but_one)
    iam.create_user(UserName="eve")
    iam.add_user_to_group(GroupName="platform", UserName="eve")
    iam.create_user(UserName="reader")
    iam.attach_user_policy(UserName="reader", PolicyArn=retired)
    iam.create_role(RoleName="deployer", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    iam.attach_role_policy(RoleName="deployer", PolicyArn=but_one)

    items = collect(moto_url)
    by_key = {i.key: i.data for i in items if isinstance(i, Resource)}
    [joined] = by_key[user("eve")]["Groups"]
    assert joined["AttachedManagedPolicies"][0]["Document"]["Statement"][0]["NotResource"]
    assert by_key[user("reader")]["AttachedManagedPolicies"][0]["Document"]["Statement"][0][
        "Action"] == "s3:Get*"

    outcomes = {(o.check.id, o.subject): o.verdict for o in evaluate_all(items)}
    role = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    group = f"arn:aws:iam::{ACCOUNT}:group/platform"
    policy = f"arn:aws:iam::{ACCOUNT}:policy/"
    expected = {
        ("aws.iam.user_has_no_direct_admin_rights", user("ops")): ("fail", "Star"),
        ("aws.iam.user_holds_no_full_admin", user("ops")): ("fail", "Star"),
        ("aws.iam.user_has_no_direct_admin_rights", user("eve")): ("pass", ""),
        ("aws.iam.user_holds_no_full_admin", user("eve")): ("fail", "group platform"),
        ("aws.iam.user_holds_no_full_admin", user("reader")): ("pass", ""),
        ("aws.iam.group_grants_no_full_admin", group): ("fail", "AllButOneBucket"),
        ("aws.iam.role_full_admin_requires_mfa", role): ("fail", "ec2.amazonaws.com"),
        ("aws.iam.policy_grants_no_full_admin", policy + "Star"): ("fail", ""),
        ("aws.iam.policy_grants_no_full_admin", policy + "AllButOneBucket"): ("fail", ""),
        ("aws.iam.policy_grants_no_full_admin", policy + "Retired"): ("pass", ""),
    }
    for key, (status, named) in expected.items():
        assert outcomes[key].status == status and named in outcomes[key].reason, key


@pytest.mark.parametrize(("condition", "status"), [
    ({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, "fail"),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:*"}}, "fail"),
    ({"StringEquals": {"sts:ExternalId": "partner-42"}}, "fail"),
    ({"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}, "pass"),
])
def test_trust_policies_through_the_connector(moto_url: str, condition: dict,
                                              status: str) -> None:
    iam = boto3.client("iam", region_name=REGIONS[0], endpoint_url=moto_url)
    iam.create_role(RoleName="partner", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"AWS": "*"},
                                                 "Condition": condition}]}))
    got = verdicts(evaluate_all(collect(moto_url)))
    assert got[("aws.iam.role_trust_policy_not_public",
                f"arn:aws:iam::{ACCOUNT}:role/partner")] == status
