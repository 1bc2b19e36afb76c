"""A whole AWS Organization as one source: each member account its own unit of work (its own
runs, chain entries and health), a denied account failing alone, an account that left retired
with its history kept, and the organisation's own checks. Through the CLI, against a moto
server holding the organisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connectors.aws.organization import list_organization
from connectors.aws.settings import Settings
from tests.aws_org_support import MANAGEMENT, ROLE, guard_organization, org_options, organization
from tests.helpers import annexa, config_file, controls_json

SOURCE = "aws-org"
ORG_CHECKS = ("aws-organizations.every_active_account_collected",
              "aws-organizations.organization_trail_logging",
              "aws-organizations.guardduty_covers_every_account",
              "aws-organizations.config_covers_every_account",
              "aws-organizations.scps_in_use")


def _config(tmp_path: Path, database_url: str, url: str, **organization: Any) -> Path:
    return config_file(tmp_path, database_url, {"name": SOURCE, "kind": "aws", "schedule": "1h",
                                                **org_options(url, **organization)})


def _rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql), params).all()
    engine.dispose()
    return rows


def _last_runs(database_url: str) -> dict[str, tuple[int, str, str | None]]:
    rows = _rows(database_url, "SELECT source, id, status, message FROM runs WHERE id IN "
                               "(SELECT MAX(id) FROM runs GROUP BY source)")
    return {source: (run_id, status, message) for source, run_id, status, message in rows}


def _check(controls: list[dict], check_id: str) -> dict:
    return next(c for control in controls for c in control["checks"] if c["id"] == check_id)


def test_the_listing_follows_include_and_exclude_through_units(org_url):
    org = organization(org_url, {"a": "prod", "b": "prod", "c": "sandbox", "d": None})
    nested = org.client("organizations").create_organizational_unit(
        ParentId=org.units["prod"], Name="prod-eu")["OrganizationalUnit"]["Id"]
    deep = org.add_account("e")
    org.client("organizations").move_account(AccountId=deep, SourceParentId=org.root,
                                             DestinationParentId=nested)
    ids = org.accounts
    settings = Settings.model_validate(org_options(
        org_url, include=[org.units["prod"], ids["d"]], exclude=[ids["b"]]))
    listing = list_organization(settings)
    assert listing.members == sorted([ids["a"], ids["d"], ids["e"]])
    assert listing.left_out == {ids["b"]: "excluded by organization.exclude",
                                ids["c"]: "not named by organization.include",
                                MANAGEMENT: "not named by organization.include"}
    assert listing.scope.id == org.id
    kinds = sorted({item.kind for item in listing.items})
    assert kinds == ["aws.organizations.account", "aws.organizations.organization",
                     "aws.organizations.policy", "aws.organizations.root"]


def test_every_account_is_a_unit_with_its_own_runs_and_the_organisation_judged(
        tmp_path, database_url, org_server, org_url, capsys):
    org = organization(org_url, {"prod": "prod", "sandbox": "sandbox", "shared": None})
    guard_organization(org)
    org.client("iam", org.accounts["prod"]).create_user(UserName="alice")
    config = _config(tmp_path, database_url, org_url, exclude=[org.units["sandbox"]])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    collected = [MANAGEMENT, org.accounts["prod"], org.accounts["shared"]]
    units = {f"{SOURCE}/{account}" for account in collected}
    runs = _last_runs(database_url)
    assert set(runs) == units | {SOURCE}
    assert all(status == "complete" for _, status, _ in runs.values()), runs
    assert runs[SOURCE][0] == max(run_id for run_id, _, _ in runs.values()), \
        "the organisation's run is sealed after its accounts'"
    alice = _rows(database_url, "SELECT source, scope FROM resource_versions WHERE key LIKE :k",
                  k="%user/alice")
    assert alice == [(f"{SOURCE}/{org.accounts['prod']}", org.accounts["prod"])]

    controls = controls_json(capsys, config)
    for check_id in ORG_CHECKS:
        assert _check(controls, check_id)["status"] == "pass", _check(controls, check_id)
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_denied_account_fails_alone_and_the_organisation_says_so(
        tmp_path, database_url, org_server, org_url, capsys):
    org = organization(org_url, {"good": None, "locked": None})
    guard_organization(org)
    locked = org.accounts["locked"]
    org_server.gate.denied.add(locked)
    config = _config(tmp_path, database_url, org_url)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 1
    runs = _last_runs(database_url)
    _, status, message = runs[f"{SOURCE}/{locked}"]
    assert status == "failed"
    assert f"sts:AssumeRole arn:aws:iam::{locked}:role/{ROLE} failed: AccessDenied" in message
    assert {runs[f"{SOURCE}/{a}"][1] for a in (MANAGEMENT, org.accounts["good"])} == {
        "complete"}
    assert runs[SOURCE][1] == "complete"
    controls = controls_json(capsys, config)
    collected = _check(controls, "aws-organizations.every_active_account_collected")
    assert collected["status"] == "fail"
    assert f"{locked} never collected: last run failed" in collected["failures"][0]["reason"]
    assert _check(controls, "aws-organizations.guardduty_covers_every_account")[
        "status"] == "error", "an account without evidence is not judged covered"
    assert annexa(capsys, config, "verify")[0] == 0


def test_an_account_that_left_is_retired_with_its_history_kept(
        tmp_path, database_url, org_server, org_url, capsys):
    org = organization(org_url, {"stays": None, "leaves": None})
    guard_organization(org)
    leaves = org.accounts["leaves"]
    org.client("iam", leaves).create_user(UserName="bob")
    config = _config(tmp_path, database_url, org_url)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    org.client("organizations").remove_account_from_organization(AccountId=leaves)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0
    assert f"retired: account {leaves} is no longer collected: it is no longer in the " \
           "organisation" in out
    runs = _last_runs(database_url)
    retired_run = runs[f"{SOURCE}/{leaves}"][0]
    assert runs[f"{SOURCE}/{leaves}"][1] == "retired"
    bob = _rows(database_url, "SELECT valid_to_run FROM resource_versions WHERE key LIKE :k",
                k="%user/bob")
    assert bob == [(retired_run,)], "its history is kept, closed at the retirement"
    assert _rows(database_url, "SELECT COUNT(*) FROM check_results WHERE source = :s AND "
                               "valid_to_run IS NULL", s=f"{SOURCE}/{leaves}") == [(0,)], \
        "a retired account is out of the current posture"
    controls = controls_json(capsys, config)
    assert _check(controls, "aws-organizations.every_active_account_collected")[
        "status"] == "pass"

    assert annexa(capsys, config, "collect")[0] == 0
    assert _last_runs(database_url)[f"{SOURCE}/{leaves}"][0] == retired_run, \
        "retired once"
    assert annexa(capsys, config, "verify")[0] == 0


def test_the_organisation_policy_allows_every_call_of_the_listing(org_url):
    import json

    org = organization(org_url, {"a": "prod"})
    guard_organization(org)
    calls: set[str] = set()
    settings = Settings.model_validate(org_options(org_url, include=[org.units["prod"]]))
    list_organization(settings, lambda svc, op, _s, _r: calls.add(f"{svc}:{op}"))
    policy = Path(__file__).parent.parent / "config" / "aws" / "annexa-organization-policy.json"
    allowed = {action for statement in json.loads(policy.read_text())["Statement"]
               for action in statement["Action"] if isinstance(statement["Action"], list)}
    assert calls, "the observer saw the listing's calls"
    assert calls - allowed == set()
