"""A kind that was listed in full and has no resource makes its checks not applicable; a kind
whose listing failed is never not applicable, and never a pass."""

from __future__ import annotations

import importlib
import json

import pytest
import requests

from checks.registry import REGISTRY, load_all
from collector.evaluate import evaluate_all
from collector.model import ALL_REGIONS, CollectionError, Scope
from connectors import KINDS as CONNECTORS
from tests.helpers import annexa, controls_json, emulator_client, write_config

VOLUME = "aws.ec2.ebs_volume_encrypted"
RDS = ("aws.rds.db_instance_storage_encrypted", "aws.rds.db_instance_not_publicly_accessible",
       "aws.rds.db_instance_multi_az")
ACCOUNT = "123456789012"


def _checks(capsys, config) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]}


def _collect(capsys, config) -> str:
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    return out


@pytest.fixture
def iam_enforced(moto_url):
    """Turn on moto's IAM enforcement; switch it off again afterwards."""
    yield lambda: requests.post(f"{moto_url}/moto-api/reset-auth", data=b"0", timeout=10)
    requests.post(f"{moto_url}/moto-api/reset-auth", data=b"inf", timeout=10)


def test_no_volume_means_not_applicable_and_a_volume_brings_the_check_back(
        tmp_path, database_url, moto_url, capsys):
    config = write_config(tmp_path, database_url, moto_url)
    annexa(capsys, config, "db", "upgrade")
    _collect(capsys, config)
    checks = _checks(capsys, config)
    assert checks[VOLUME]["status"] == "not_applicable"
    assert checks[VOLUME]["resources"] == {"not_applicable": 1}
    for check_id in RDS:
        assert checks[check_id]["status"] == "not_applicable", check_id
    code, out, err = annexa(capsys, config, "snapshot", "--format", "json")
    assert code == 0, err
    results = [r for ctl in json.loads(out)["controls"] for c in ctl["checks"]
               if c["id"] == VOLUME for r in c["results"]]
    assert {(r["status"], r["reason"]) for r in results} == {
        ("not_applicable", f"no aws.ec2.volume in {ACCOUNT}")}

    ec2 = emulator_client(moto_url)("ec2", "eu-west-1")
    volume = ec2.create_volume(Size=1, AvailabilityZone="eu-west-1a")["VolumeId"]
    _collect(capsys, config)
    checks = _checks(capsys, config)
    assert checks[VOLUME]["status"] == "fail", "the volume is judged; nothing else is left"
    assert checks[VOLUME]["resources"] == {"fail": 1}

    ec2.delete_volume(VolumeId=volume)
    _collect(capsys, config)
    assert _checks(capsys, config)[VOLUME]["resources"] == {"not_applicable": 1}, \
        "the deleted volume's failure is closed, and no volume is left"
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_denied_listing_is_an_error_not_not_applicable(tmp_path, database_url, moto_url,
                                                         capsys, iam_enforced, monkeypatch):
    iam = emulator_client(moto_url)("iam", "us-east-1")
    iam.create_user(UserName="annexa-reader")
    deny = {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                          {"Effect": "Deny", "Action": ["ec2:DescribeVolumes", "rds:*"],
                           "Resource": "*"}]}
    iam.put_user_policy(UserName="annexa-reader", PolicyName="no-volumes",
                        PolicyDocument=json.dumps(deny))
    key = iam.create_access_key(UserName="annexa-reader")["AccessKey"]
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    annexa(capsys, config, "db", "upgrade")
    _collect(capsys, config)
    before = _checks(capsys, config)
    assert before[VOLUME]["status"] == "not_applicable"

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    iam_enforced()
    out = _collect(capsys, config)
    assert "partial" in out and "error: ec2 in us-east-1: AccessDenied" in out
    after = _checks(capsys, config)
    denied = [VOLUME, *RDS]
    for check_id in denied:
        assert after[check_id]["status"] == "error", after[check_id]
        assert "not_applicable" not in after[check_id]["resources"], \
            "what was not applicable cannot be said once the kind could not be listed"
    assert after["aws.ec2.ebs_encryption_by_default_enabled"]["status"] != "error", \
        "the other EC2 listings of the region were read"
    for ctl in controls_json(capsys, config):
        if any(c["id"] in denied for c in ctl["checks"]):
            assert ctl["status"] not in ("pass", "not_applicable"), ctl["id"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


SCOPE = Scope("aws", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root",
              kinds=("aws.ec2.volume", "aws.rds.db_instance", "aws.kms.key"))


def _statuses(items: list) -> dict[str, set[tuple[str, str]]]:
    load_all()
    out: dict[str, set[tuple[str, str]]] = {}
    for o in evaluate_all(items):
        if o.check.resource_kind in SCOPE.kinds:
            out.setdefault(o.kind, set()).add((o.subject, o.verdict.status))
    return out


def test_a_listing_that_failed_in_one_region_leaves_the_kind_to_its_error():
    err = SCOPE.error("ec2", "eu-west-1", ("aws.ec2.volume",), "AccessDenied")
    found = _statuses([SCOPE, err])
    assert found["aws.ec2.volume"] == {(f"{SCOPE.key}#eu-west-1", "error")}
    assert found["aws.rds.db_instance"] == {(f"{SCOPE.key}#{ALL_REGIONS}", "not_applicable")}


def test_a_resource_that_could_not_be_stored_is_not_absence():
    err = CollectionError(SCOPE.id, "us-east-1", "annexa", ("aws.kms.key",), "not stored",
                          key="arn:aws:kms:us-east-1:123456789012:key/k")
    assert {status for _, status in _statuses([SCOPE, err])["aws.kms.key"]} == {"error"}


def test_only_declared_kinds_of_the_same_scope_are_absent():
    undeclared = Scope("aws", ACCOUNT, SCOPE.key)
    assert _statuses([undeclared]) == {}, "a connector that declares nothing is judged as before"
    other = Scope("aws", "210987654321", "arn:aws:iam::210987654321:root", kinds=SCOPE.kinds)
    volume = other.resource("aws.ec2.volume", "arn:aws:ec2:us-east-1:210987654321:volume/v",
                            {"Encrypted": True}, "us-east-1")
    found = _statuses([SCOPE, other, volume])
    assert (f"{SCOPE.key}#{ALL_REGIONS}", "not_applicable") in found["aws.ec2.volume"], \
        "a volume of another account does not count for this one"
    assert (volume.key, "pass") in found["aws.ec2.volume"]
    assert (f"{other.key}#{ALL_REGIONS}", "not_applicable") not in found["aws.ec2.volume"]


@pytest.mark.parametrize("connector", sorted(CONNECTORS))
def test_every_connector_declares_kinds_that_its_checks_use(connector, request):
    """Each connector names the kinds it lists in full; every resource check of the provider
    is on one of them, so no kind is left unknown when it is simply empty."""
    load_all()
    kinds = _declared(connector, request)
    used = {c.resource_kind for c in REGISTRY.values()
            if not c.is_scope_check and c.provider == connector}
    assert used and used <= set(kinds), used - set(kinds)


def _declared(connector: str, request: pytest.FixtureRequest) -> tuple[str, ...]:
    if connector == "aws":
        from connectors.aws import collect
        from connectors.aws.settings import Settings

        settings = Settings(regions=["us-east-1"], endpoint_url=request.getfixturevalue(
            "moto_url"))
        scope = next(iter(collect(settings)))
        assert isinstance(scope, Scope)
        return scope.kinds
    if connector == "azure":
        from connectors.azure.arm import subscription_scope

        return subscription_scope("00000000-0000-0000-0000-000000000000").kinds
    if connector == "entra":
        from connectors.entra import tenant_scope

        return tenant_scope("00000000-0000-0000-0000-000000000000").kinds
    if connector == "gcp":
        from connectors.gcp import scope_of

        return scope_of("projects/1").kinds
    module = importlib.import_module(f"connectors.{connector}")
    return getattr(module, "LISTED", module.KINDS)


def test_a_resource_of_the_kind_is_judged_and_not_absent():
    volume = SCOPE.resource("aws.ec2.volume", "arn:aws:ec2:us-east-1:123456789012:volume/v",
                            {"Encrypted": False}, "us-east-1")
    assert _statuses([SCOPE, volume])["aws.ec2.volume"] == {(volume.key, "fail")}
