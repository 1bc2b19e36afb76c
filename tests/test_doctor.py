"""`annexa doctor`: each source's permissions probed with one call each against the real
servers on loopback (moto with IAM enforcement on, the HTTPS fakes), denials named with the
line of the shipped policy that grants them, causes named when nothing answers, and nothing
stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.config import SourceConfig
from collector.demo.emulators import azure as azure_emulator
from collector.demo.emulators import gcp_sample
from collector.doctor import SourceReport, examine
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


def doctor(kind: str, **options: Any) -> SourceReport:
    return examine(SourceConfig.model_validate({"name": f"{kind}-test", "kind": kind,
                                                **options}))


def statuses(report: SourceReport) -> dict[str, str]:
    assert report.problem is None, report.problem
    return {check.permission: check.status for check in report.checks}


def source(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in ("name", "kind")}


def test_every_okta_scope_granted(okta_fake: OktaFake) -> None:
    report = doctor("okta", **source(okta_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report
    assert report.passed


def test_every_entra_permission_granted(entra_fake: EntraFake) -> None:
    report = doctor("entra", **source(entra_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report


def test_every_github_permission_granted(github_fake: GitHubFake) -> None:
    report = doctor("github", **source(github_fake.source()))
    assert set(statuses(report).values()) == {"granted"}, report


def test_every_azure_action_granted(tenant: Tenant) -> None:
    report = doctor("azure", **source(azure_emulator.source(tenant.api)))
    assert set(statuses(report).values()) == {"granted"}, report


def test_every_gcp_permission_granted(cloud: Any, tmp_path: Path) -> None:
    report = doctor("gcp", **gcp_options(cloud, tmp_path, organization=gcp_sample.ORG))
    assert set(statuses(report).values()) == {"granted"}, report


def test_every_workspace_scope_granted(workspace: Any, tmp_path: Path) -> None:
    report = doctor("google_workspace", **workspace_options(workspace, tmp_path))
    assert set(statuses(report).values()) == {"granted"}, report
