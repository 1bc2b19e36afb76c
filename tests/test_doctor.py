"""`annexa doctor`: each source's permissions probed with one call each against the real
servers on loopback (moto with IAM enforcement on, the HTTPS fakes), denials named with the
line of the shipped policy that grants them, causes named when nothing answers, and nothing
stored."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
import trustme
import yaml

from collector.config import SourceConfig
from collector.db import engine_for
from collector.demo.emulators import azure as azure_emulator
from collector.demo.emulators import azure_sample, entra, gcp_sample, github, okta
from collector.demo.emulators.entra import DEMO_CLIENT_ID
from collector.doctor import ROOT, SourceReport, as_table, examine, policy_line
from collector.migrate import upgrade
from connectors import KINDS
from tests.aws_org_support import org_options, organization
from tests.azure_support import Tenant, azure_server, tenant
from tests.entra_support import EntraFake, entra_fake, entra_server
from tests.gcp_support import cloud, gcp_server
from tests.gcp_support import source_options as gcp_options
from tests.github_support import GitHubFake, github_fake, github_server
from tests.google_workspace_support import source_options as workspace_options
from tests.google_workspace_support import workspace, workspace_server
from tests.okta_support import OktaFake, okta_fake, okta_server

__all__ = ["azure_server", "cloud", "entra_fake", "entra_server", "gcp_server", "github_fake",
           "github_server", "okta_fake", "okta_server", "tenant", "workspace",
           "workspace_server"]


AWS_POLICY = ROOT / "config/aws/annexa-readonly-policy.json"
ORGANIZATION_POLICY = "config/aws/annexa-organization-policy.json"
# The two actions the IAM user's policy leaves out of the shipped one.
LEFT_OUT = ("ec2:DescribeVpcs", "kms:ListAliases")
# moto authorises three S3 reads under other names than AWS's: the account's public access
# block as s3:GetPublicAccessBlock, a bucket's and its encryption as s3:ListBucket.
MOTO_SPELLINGS = ("s3:GetPublicAccessBlock", "s3:ListBucket")
# What moto answers unlike AWS, whatever the policy: GuardDuty's REST calls fail its signature
# check for IAM users, and GetEbsDefaultKmsKeyId is not implemented (500).
MOTO_UNLIKE_AWS = {"guardduty:ListDetectors", "guardduty:GetDetector",
                   "ec2:GetEbsDefaultKmsKeyId"}
# The calls that set the account up before moto starts to authorise (CreateUser,
# PutUserPolicy, CreateAccessKey, CreateBucket, CreateKey, CreateTrail, and Identity Center's
# ListInstances, CreatePermissionSet, CreateGroup).
SETUP_CALLS = 9
DEADLINE = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def iam_moto() -> Iterator[tuple[str, dict[str, str]]]:
    """A moto server of its own process that authorises every call after the setup's, and
    the access key of an IAM user whose policy is the shipped one without LEFT_OUT."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS),
           "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for _ in range(200):  # werkzeug's banner, then its line for each request
        line = server.stderr.readline()
        if "Running on" in line or not line:
            break
    # Keep reading its log, so that a full pipe never stalls the server.
    threading.Thread(target=server.stderr.read, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        root = {"endpoint_url": url, "region_name": "us-east-1",
                "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        iam = boto3.client("iam", **root)
        iam.create_user(UserName="annexa")
        policy = json.loads(AWS_POLICY.read_text())
        actions = policy["Statement"][0]["Action"]
        policy["Statement"][0]["Action"] = [
            *(a for a in actions if a not in LEFT_OUT), *MOTO_SPELLINGS]
        iam.put_user_policy(UserName="annexa", PolicyName="annexa-readonly",
                            PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="annexa")["AccessKey"]
        boto3.client("s3", **root).create_bucket(Bucket="annexa-evidence")
        boto3.client("kms", **root).create_key()
        boto3.client("cloudtrail", **root).create_trail(Name="org",
                                                         S3BucketName="annexa-evidence")
        sso = boto3.client("sso-admin", **root)
        [instance] = sso.list_instances()["Instances"]
        sso.create_permission_set(InstanceArn=instance["InstanceArn"], Name="ReadOnly")
        boto3.client("identitystore", **root).create_group(
            IdentityStoreId=instance["IdentityStoreId"], DisplayName="Auditors")
        yield url, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    finally:
        server.terminate()
        server.wait(timeout=DEADLINE)


def fix_line(report: SourceReport, permission: str) -> tuple[str, str]:
    """The policy file and the text of the line a denial's fix names."""
    check = next(c for c in report.checks if c.permission == permission)
    assert check.status == "denied" and check.fix is not None, check
    assert check.fix.add == permission and check.fix.line is not None
    lines = (ROOT / check.fix.policy).read_text().splitlines()
    return check.fix.policy, lines[check.fix.line - 1]


def doctor(kind: str, **options: Any) -> SourceReport:
    return examine(SourceConfig.model_validate({"name": f"{kind}-test", "kind": kind,
                                                **options}))


def statuses(report: SourceReport) -> dict[str, str]:
    assert report.problem is None, report.problem
    return {check.permission: check.status for check in report.checks}


def _shipped(kind: str) -> set[str]:
    """The permissions that the kind's shipped policy grants, read as the provider reads it."""
    config = ROOT / "config" / kind
    if kind == "azure":
        return set(json.loads((config / "annexa-reader-role.json").read_text())["Actions"])
    if kind == "entra":
        return {p["name"] for p in json.loads(
            (config / "graph-permissions.json").read_text())["permissions"]}
    if kind == "github":
        return {f"{name}:{access}" for name, access in json.loads(
            (config / "app-permissions.json").read_text())["default_permissions"].items()}
    if kind == "gcp":
        return set(yaml.safe_load((config / "annexa-asset-reader-role.yaml").read_text())[
            "includedPermissions"])
    if kind == "google_workspace":
        return set((config / "delegated-scopes.txt").read_text().split())
    if kind == "okta":
        return {s["name"] for s in json.loads((config / "oauth-scopes.json").read_text())[
            "scopes"]}
    return set(json.loads((config / "annexa-readonly-policy.json").read_text())[
        "Statement"][0]["Action"])


def assert_the_shipped_policy_grants_every_probe(kind: str, **options: Any) -> None:
    """The permissions probed are those of the shipped policy, each on a line of its own
    there: a denial's fix can always name it."""
    config = SourceConfig.model_validate({"name": f"{kind}-test", "kind": kind, **options})
    plan = importlib.import_module(f"{KINDS[kind]}.probes").plan(config.settings())
    account = {p.permission for p in plan.probes if p.policy != ORGANIZATION_POLICY}
    assert account == _shipped(kind)
    for probe in plan.probes:
        line = policy_line(probe.policy, probe.policy_text)
        assert line is not None, f"{probe.permission} is not in {probe.policy}"


def source(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("name", "kind")}


def test_every_okta_scope_granted(okta_fake: OktaFake) -> None:
    report = doctor("okta", **source(okta_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report
    assert report.passed
    assert_the_shipped_policy_grants_every_probe("okta", **source(okta_fake.source()))


def test_every_entra_permission_granted(entra_fake: EntraFake) -> None:
    report = doctor("entra", **source(entra_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report
    assert_the_shipped_policy_grants_every_probe("entra", **source(entra_fake.source()))


def test_every_github_permission_granted(github_fake: GitHubFake) -> None:
    report = doctor("github", **source(github_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report
    assert_the_shipped_policy_grants_every_probe("github", **source(github_fake.source()))


def test_every_azure_action_granted(tenant: Tenant) -> None:
    options = source(azure_emulator.source(tenant.api))
    report = doctor("azure", **options)
    assert set(statuses(report).values()) == {"granted"}, report
    assert_the_shipped_policy_grants_every_probe("azure", **options)


def test_every_gcp_permission_granted(cloud: Any, tmp_path: Path) -> None:
    options = gcp_options(cloud, tmp_path, organization=gcp_sample.ORG)
    report = doctor("gcp", **options)
    assert set(statuses(report).values()) == {"granted"}, report
    assert_the_shipped_policy_grants_every_probe("gcp", **options)


def test_every_workspace_scope_granted(workspace: Any, tmp_path: Path) -> None:
    options = workspace_options(workspace, tmp_path)
    report = doctor("google_workspace", **options)
    assert set(statuses(report).values()) == {"granted"}, report
    assert_the_shipped_policy_grants_every_probe("google_workspace", **options)


def test_aws_with_iam_enforced_names_the_two_missing_actions_and_their_policy_lines(
        iam_moto: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, key = iam_moto
    for name, value in key.items():
        monkeypatch.setenv(name, value)
    report = doctor("aws", regions=["us-east-1"], endpoint_url=url)
    found = statuses(report)
    shipped = set(json.loads(AWS_POLICY.read_text())["Statement"][0]["Action"])
    assert set(found) == shipped
    assert {p for p, status in found.items()
            if status == "denied" and p not in MOTO_UNLIKE_AWS} == set(LEFT_OUT)
    for action in LEFT_OUT:
        assert fix_line(report, action) == ("config/aws/annexa-readonly-policy.json",
                                            f'        "{action}",')
        assert "is not authorized to perform: " + action in next(
            c.detail for c in report.checks if c.permission == action)
    assert {p for p, status in found.items() if status != "granted"} - MOTO_UNLIKE_AWS == \
        set(LEFT_OUT)
    assert not report.passed
    assert "add ec2:DescribeVpcs (granted by config/aws/annexa-readonly-policy.json:" \
           in as_table([report])


def test_an_okta_endpoint_that_answers_403_is_that_scope_denied(okta_fake: OktaFake) -> None:
    hostile = "You may not\x1b[2J\u202eread zones"
    okta_fake.api.fail(r"^/api/v1/zones", okta.okta_error(403, "E0000006", hostile))
    report = doctor("okta", **source(okta_fake.source()))
    found = statuses(report)
    assert {p for p, status in found.items() if status != "granted"} == {
        "okta.networkZones.read"}
    policy, line = fix_line(report, "okta.networkZones.read")
    assert policy == "config/okta/oauth-scopes.json"
    assert '"name": "okta.networkZones.read"' in line
    table = as_table([report])
    assert "\x1b" not in table and "\u202e" not in table
    assert "\\x1b[2J\\u202eread zones" in table


def test_an_entra_app_without_one_permission_has_it_denied(
        entra_fake: EntraFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(entra_fake.directory.roles, DEMO_CLIENT_ID,
                        set(entra.GRANTED) - {"RoleManagement.Read.Directory"})
    report = doctor("entra", **source(entra_fake.source()))
    assert {p for p, status in statuses(report).items() if status != "granted"} == {
        "RoleManagement.Read.Directory"}
    assert '"name": "RoleManagement.Read.Directory"' in fix_line(
        report, "RoleManagement.Read.Directory")[1]


def test_a_workspace_scope_not_delegated_is_that_scope_denied(workspace: Any,
                                                              tmp_path: Path) -> None:
    policies = "https://www.googleapis.com/auth/cloud-identity.policies.readonly"
    delegated = (ROOT / "config/google_workspace/delegated-scopes.txt").read_text().split()
    options = workspace_options(workspace, tmp_path,
                                scopes=[s for s in delegated if s != policies])
    report = doctor("google_workspace", **options)
    assert {p for p, status in statuses(report).items() if status != "granted"} == {policies}
    assert fix_line(report, policies) == ("config/google_workspace/delegated-scopes.txt",
                                          policies)


def test_a_refused_port_is_unreachable_with_the_cause_named(okta_fake: OktaFake) -> None:
    port = _free_port()
    report = doctor("okta", **source(okta_fake.source(org_url=f"https://127.0.0.1:{port}")))
    assert report.problem == {"status": "unreachable",
                              "detail": f"connection refused to 127.0.0.1:{port}"}
    assert not report.checks and not report.passed


def test_aws_on_a_refused_port_is_unreachable_with_the_cause_named() -> None:
    port = _free_port()
    report = doctor("aws", regions=["us-east-1"], endpoint_url=f"http://127.0.0.1:{port}")
    assert report.problem == {"status": "unreachable",
                              "detail": f"connection refused to 127.0.0.1:{port}"}


def test_a_certificate_not_trusted_is_unreachable_with_the_cause_named(
        okta_fake: OktaFake, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    report = doctor("okta", **source(okta_fake.source(ca_bundle=str(other))))
    assert report.problem is not None and report.problem["status"] == "unreachable"
    assert report.problem["detail"].startswith("certificate verify failed: unable to get "
                                               "local issuer certificate (127.0.0.1:")


def test_credentials_that_cannot_be_had_are_named_once(okta_fake: OktaFake,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(okta.TOKEN_ENV)
    report = doctor("okta", **source(okta_fake.source()))
    assert report.problem is not None and report.problem["status"] == "credentials"
    assert f"{okta.TOKEN_ENV} is not set" in report.problem["detail"]
    assert not report.checks


def test_the_policy_line_is_read_from_the_file_as_it_is_now(tmp_path: Path) -> None:
    policy = tmp_path / "config" / "policy.json"
    policy.parent.mkdir()
    policy.write_text('{\n  "Action": [\n    "ec2:DescribeVpcsAll",\n    "ec2:DescribeVpcs"\n'
                      '  ]\n}\n')
    assert policy_line("config/policy.json", "ec2:DescribeVpcs", root=tmp_path) == 4
    assert policy_line("config/policy.json", "ec2:DescribeFlowLogs", root=tmp_path) is None


def _cli(config: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config),
                           "doctor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=DEADLINE, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_the_cli_reports_exits_and_stores_nothing(okta_fake: OktaFake, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'annexa.db'}"
    engine = engine_for(database, check_schema=False)
    upgrade(engine)
    port = _free_port()
    refused = {**okta_fake.source(name="okta-away", org_url=f"https://127.0.0.1:{port}"),
               "schedule": "1h"}
    config = tmp_path / "annexa.yaml"
    config.write_text(yaml.safe_dump({
        "database": database, "signing_key": str(tmp_path / "signing.key"),
        "sources": [{**okta_fake.source(), "schedule": "1h"}, refused]}))
    env = {okta.TOKEN_ENV: okta.DEMO_TOKEN}

    granted = _cli(config, "--source", "okta-test", "--format", "json", env=env)
    assert granted.returncode == 0, granted.stderr
    [report] = json.loads(granted.stdout)
    assert report["source"] == "okta-test" and report["passed"] and report["problem"] is None
    assert {p["status"] for p in report["permissions"]} == {"granted"}
    assert len(report["permissions"]) == len(json.loads(
        (ROOT / "config/okta/oauth-scopes.json").read_text())["scopes"])

    okta_fake.api.fail(r"^/api/v1/apps", okta.okta_error(403, "E0000006", "no apps for you"))
    both = _cli(config, env=env)
    assert both.returncode == 1, both.stderr
    lines = both.stdout.splitlines()
    assert lines[0].split() == ["source", "permission", "result", "detail"]
    [row] = [line for line in lines if " denied " in line]
    assert row.split()[:3] == ["okta-test", "okta.apps.read", "denied"]
    assert "add okta.apps.read (granted by config/okta/oauth-scopes.json:" in row
    [away] = [line for line in lines if line.startswith("okta-away")]
    assert away.split()[1:3] == ["(source)", "unreachable"]
    assert away.endswith(f"connection refused to 127.0.0.1:{port}")

    unknown = _cli(config, "--source", "nowhere", env=env)
    assert unknown.returncode == 2 and "no source named 'nowhere'" in unknown.stderr
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM runs")) == 0
        assert conn.scalar(sa.text("SELECT COUNT(*) FROM blobs")) == 0
    engine.dispose()


def test_a_gcp_permission_missing_at_the_parent_is_denied(cloud: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(cloud, "permissions", {"cloudasset.assets.listResource"})
    report = doctor("gcp", **gcp_options(cloud, tmp_path, organization=gcp_sample.ORG))
    assert statuses(report) == {"cloudasset.assets.listResource": "granted",
                                "cloudasset.assets.listIamPolicy": "denied"}
    assert fix_line(report, "cloudasset.assets.listIamPolicy") == (
        "config/gcp/annexa-asset-reader-role.yaml", "  - cloudasset.assets.listIamPolicy")


def test_a_github_token_without_one_permission_has_it_denied(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    scopes = [s for s in github.GRANTED if s != github.VULNERABILITY_ALERTS]
    monkeypatch.setenv("GITHUB_TOKEN", github.personal_token(github_fake.tokens,
                                                             github_fake.org, scopes))
    report = doctor("github", **source(github_fake.source()))
    assert {p for p, status in statuses(report).items() if status != "granted"} == {
        "vulnerability_alerts:read"}
    assert fix_line(report, "vulnerability_alerts:read")[1].strip() == \
        '"vulnerability_alerts": "read"'


def test_an_aws_organization_source_probes_the_organization_policy_too(org_url: str) -> None:
    organization(org_url, {"prod": "Production"})
    report = doctor("aws", **org_options(org_url))
    found = statuses(report)
    organizations = {p for p in found if p.startswith("organizations:")}
    assert organizations == {a for a in json.loads(
        (ROOT / "config/aws/annexa-organization-policy.json").read_text())["Statement"][0][
        "Action"] if a.startswith("organizations:")}
    assert {found[p] for p in organizations} == {"granted"}
    assert_the_shipped_policy_grants_every_probe("aws", **org_options(org_url))


def test_an_access_key_aws_does_not_know_is_the_sources_credential_problem(
        iam_moto: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, key = iam_moto
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAANNEXAUNKNOWN000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["AWS_SECRET_ACCESS_KEY"])
    report = doctor("aws", regions=["us-east-1"], endpoint_url=url)
    assert report.problem is not None and report.problem["status"] == "credentials"
    assert report.problem["detail"].startswith(
        "sts GetCallerIdentity: GetCallerIdentity: InvalidClientTokenId")
    assert not report.checks


def test_a_github_token_github_refuses_is_the_sources_credential_problem(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "github_pat_revoked")
    report = doctor("github", **source(github_fake.source()))
    assert report.problem is not None and report.problem["status"] == "credentials"
    assert f"GET /orgs/{github_fake.org.login}: orgs.get: HTTP 401" in report.problem["detail"]


def test_a_proxy_that_refuses_is_unreachable_with_the_proxy_named(
        okta_fake: OktaFake, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    report = doctor("okta", **source(okta_fake.source()))
    assert report.problem == {"status": "unreachable",
                              "detail": f"proxy: connection refused to 127.0.0.1:{port}"}


def test_an_endpoint_that_never_answers_is_unreachable_with_the_cause_named(
        okta_fake: OktaFake) -> None:
    with socket.socket() as silent:  # listens, and never accepts
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        report = doctor("okta", **source(okta_fake.source(org_url=f"https://127.0.0.1:{port}",
                                                          timeout=0.2)))
    assert report.problem == {"status": "unreachable",
                              "detail": f"timed out waiting for 127.0.0.1:{port}"}


def test_an_azure_subscription_that_refuses_has_its_reads_denied(tenant: Tenant) -> None:
    tenant.state.denied.add(azure_sample.PROD)
    report = doctor("azure", **source(azure_emulator.source(tenant.api)),
                    subscriptions=[azure_sample.PROD])
    found = statuses(report)
    assert found["Microsoft.Resources/subscriptions/read"] == "denied"
    assert found["Microsoft.Storage/storageAccounts/read"] == "denied"
    # What is read of a resource cannot be asked when no resource could be listed.
    assert found["Microsoft.Storage/storageAccounts/blobServices/read"] == "untested"
    policy, line = fix_line(report, "Microsoft.Storage/storageAccounts/read")
    assert (policy, line.strip()) == ("config/azure/annexa-reader-role.json",
                                      '"Microsoft.Storage/storageAccounts/read",')
    assert "AuthorizationFailed" in next(c.detail for c in report.checks
                                         if c.permission == "Microsoft.Resources/"
                                                            "subscriptions/read")
