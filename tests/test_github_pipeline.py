"""The GitHub source through the `annexa` CLI on SQLite and PostgreSQL: planted gaps on exactly
their resources with passing twins beside them, an unchanged second run that adds no blob,
a repository whose protection REST refuses (403) that is `error` for its branch checks only
while "Branch not protected" (404) stays a finding, a revoked token and an organisation the
token cannot see that keep the earlier evidence and never pass, a ledger that verifies and a
bundle that verifies offline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import yaml

from collector.config import ConfigError, load
from collector.demo.emulators import github
from collector.schema import now
from tests.github_support import SINGLE, GitHubFake, github_fake, github_server, write_config
from tests.helpers import (
    annexa,
    assert_export_verifies,
    assert_failures_are_planted,
    controls_json,
    failing_by_check,
)

__all__ = ["github_fake", "github_server"]

BRANCH_CHECKS = {"github.repository.default_branch_requires_approving_review",
                 "github.repository.default_branch_blocks_force_pushes",
                 "github.repository.default_branch_protection_binds_admins",
                 "github.repository.default_branch_blocks_deletion"}
LEGACY = "github:repo:acme/legacy-billing"


def _github_checks(capsys, config) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]
            if c["id"].startswith("github.")}


def _open_versions(database_url: str, kind: str) -> int:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        count = conn.scalar(sa.text("SELECT COUNT(*) FROM resource_versions WHERE kind = :kind "
                                    "AND valid_to_run IS NULL"), {"kind": kind})
    engine.dispose()
    return int(count or 0)


def test_planted_gaps_fail_exactly_and_their_twins_pass(github_fake: GitHubFake) -> None:
    assert_failures_are_planted(github_fake.planted, github_fake.collect(),
                                set(github_fake.planted) | {
                                    "github.organization.two_factor_required",
                                    "github.organization.workflows_cannot_approve_pull_requests",
                                    "github.organization.members_cannot_create_public_repositories"},
                                fail_only=SINGLE)


def test_the_organisation_is_judged_stored_sealed_and_exported(tmp_path, database_url, capsys,
                                                               github_fake: GitHubFake) -> None:
    config = write_config(tmp_path, database_url, github_fake)
    started = now() - timedelta(seconds=1)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    checks = _github_checks(capsys, config)
    assert len(checks) >= 12
    assert not [c for c in checks.values() if c["status"] == "error"]
    failing = {k: v for k, v in failing_by_check(
        [{"checks": list(checks.values())}]).items() if v}
    assert failing == github_fake.planted

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        keys = set(conn.scalars(sa.text("SELECT key FROM resource_versions")))
    engine.dispose()
    assert {k.split(":")[1] for k in keys} == {"org", "repo", "member", "collaborator"}
    assert all(k.startswith("github:") for k in keys)

    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "(0 new versions, 0 new blobs)" in out, out
    assert annexa(capsys, config, "verify")[0] == 0
    assert_export_verifies(capsys, config, tmp_path / "github.zip", started.isoformat(),
                           (now() + timedelta(seconds=1)).isoformat())


def test_protection_403_is_an_error_for_its_branch_checks_and_404_a_finding(
        tmp_path, database_url, capsys, github_fake: GitHubFake) -> None:
    config = write_config(tmp_path, database_url, github_fake)
    annexa(capsys, config, "db", "upgrade")
    github_fake.repo("legacy-billing").protection_forbidden = True
    github_fake.repo("api").protection_restricted = True  # its rule asked of REST: 200
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    checks = _github_checks(capsys, config)
    for check in BRANCH_CHECKS:
        assert checks[check]["status"] in ("error", "fail"), checks[check]
        assert LEGACY not in checks[check]["failing_resources"], check
        assert any("branch_protection could not be collected" in e and "HTTP 403" in e
                   for e in checks[check]["errors"]), checks[check]
        assert "github:repo:acme/api" not in checks[check]["failing_resources"], check
    secret = checks["github.repository.secret_scanning_enabled"]
    assert secret["status"] == "fail" and not secret["errors"], "other checks go on"


def test_a_revoked_token_and_an_unseen_organisation_keep_the_evidence_and_never_pass(
        tmp_path, database_url, capsys, github_fake: GitHubFake,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, database_url, github_fake)
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    repositories = len(github_fake.org.repos)
    assert _open_versions(database_url, "github.repository") == repositories

    github_fake.tokens.revoke_all()
    code, _, err = annexa(capsys, config, "collect")
    assert code == 1 and "HTTP 401 : Bad credentials" in err, err
    statuses = {c["status"] for c in _github_checks(capsys, config).values()}
    assert "pass" not in statuses and statuses <= {"error", "fail", "stale", "unknown"}, statuses

    monkeypatch.setenv("GITHUB_TOKEN", github.personal_token(github_fake.tokens, github_fake.org,
                                                             login="someone-else"))
    code, _, err = annexa(capsys, config, "collect")
    assert code == 1 and "organisation acme: orgs.get: HTTP 404 : Not Found" in err, err
    statuses = {c["status"] for c in _github_checks(capsys, config).values()}
    assert "pass" not in statuses, statuses
    assert _open_versions(database_url, "github.repository") == repositories
    assert _open_versions(database_url, "github.member") == len(github_fake.org.members)
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("api_url", "http://ghe.example.com/api/v3", "sources[0].api_url: "
                                                 "'http://ghe.example.com/api/v3' is not an "
                                                 "https:// URL"),
    ("installation_id", 5, "a GitHub App needs app_id, private_key_file and installation_id"),
    ("repos_page", 10, "sources[0].repos_page: Extra inputs are not permitted"),
], ids=["api_url", "app", "unknown"])
def test_a_bad_source_names_the_field(tmp_path, github_fake: GitHubFake, option: str,
                                      value: object, problem: str) -> None:
    config = write_config(tmp_path, "sqlite:///unused.db", github_fake)
    raw = yaml.safe_load(config.read_text())
    raw["sources"][0][option] = value
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as error:
        load(str(config))
    assert problem in str(error.value)
