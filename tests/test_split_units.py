"""Azure management groups and GCP folders as units of work, as AWS accounts are: each named
group or folder its own unit (runs, chain entries, health) with the right subscriptions or
projects, one that answers 403 failing alone, one no longer configured retired with its
history kept, the source's own run judging that every unit was collected; and splitting costs
at most a partial page per query and unit. Through the CLI against the loopback fakes, and once
through a worker of the cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from collector.demo.emulators import gcp_sample as sample
from collector.demo.emulators.azure import Azure
from collector.demo.emulators.azure_sample import DEV, PROD
from collector.model import Resource
from tests.azure_support import DEV_GROUP, PROD_GROUP, Tenant, azure_server, in_groups, tenant
from tests.gcp_support import (
    GAPS,
    LAB,
    TWIN,
    cloud,
    collected,
    gcp_server,
    scope_key,
    source_options,
)
from tests.helpers import annexa, controls_json, failing_by_check
from tests.test_cluster import Workers, broker, workers

__all__ = ["azure_server", "broker", "cloud", "gcp_server", "tenant", "workers"]  # fixtures

AZURE, GCP = "azure-test", "gcp-test"
AZURE_CHECK = "azure-management-groups.every_management_group_collected"
GCP_CHECK = "gcp-folders.every_folder_collected"
PROD_FOLDER, LAB_FOLDER = sample.PROD_FOLDER, sample.LAB_FOLDER


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'annexa.db'}"


def _rows(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _last_runs(database_url: str) -> dict[str, tuple[int, str, str | None]]:
    rows = _rows(database_url, "SELECT source, id, status, message FROM runs WHERE id IN "
                               "(SELECT MAX(id) FROM runs GROUP BY source)")
    return {source: (run_id, status, message) for source, run_id, status, message in rows}


def _scopes(database_url: str, unit: str) -> set[str]:
    return {scope for (scope,) in _rows(
        database_url, "SELECT DISTINCT scope FROM resource_versions WHERE source = :s AND "
                      "valid_to_run IS NULL", s=unit)}


def _check(controls: list[dict], check_id: str) -> dict:
    return next(c for control in controls for c in control["checks"] if c["id"] == check_id)


def _azure_config(tmp_path: Path, database_url: str, tenant: Tenant, groups: list[str]) -> Path:
    return tenant.write_config(tmp_path, database_url, management_groups=groups)


def _gcp_config(tmp_path: Path, database_url: str, cloud: Any, folders: list[str]) -> Path:
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump({
        "database": database_url, "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
        "sources": [{"name": GCP, "kind": "gcp", "schedule": "1h",
                     **source_options(cloud, tmp_path, folders=folders)}]}))
    return path


def _queued(config: Path, broker: str) -> Path:
    config.write_text(config.read_text() + f"queue:\n  broker: {broker}\n  wait: 120s\n")
    return config


def _prepared(capsys: pytest.CaptureFixture[str], config: Path) -> Path:
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    return config


# --- Azure management groups -----------------------------------------------------------------

def test_each_management_group_is_a_unit_with_its_subscriptions(
        tmp_path, database_url, tenant: Tenant, capsys) -> None:
    in_groups(tenant.state)
    config = _prepared(capsys, _azure_config(tmp_path, database_url, tenant,
                                             [PROD_GROUP, DEV_GROUP]))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    runs = _last_runs(database_url)
    units = {f"{AZURE}/{PROD_GROUP}", f"{AZURE}/{DEV_GROUP}"}
    assert set(runs) == units | {AZURE}
    assert {status for _, status, _ in runs.values()} == {"complete"}, runs
    assert runs[AZURE][0] == max(run_id for run_id, _, _ in runs.values()), \
        "the source's run is sealed after its units'"
    assert _scopes(database_url, f"{AZURE}/{PROD_GROUP}") == {f"/subscriptions/{PROD}"}
    assert _scopes(database_url, f"{AZURE}/{DEV_GROUP}") == {f"/subscriptions/{DEV}"}

    controls = controls_json(capsys, config)
    check = _check(controls, AZURE_CHECK)
    assert check["status"] == "pass", check
    failing = {k: v for k, v in failing_by_check(controls).items() if k.startswith("azure.")}
    assert failing == tenant.planted, "split, the tenant is judged as it is whole"
    members = _rows(database_url, "SELECT COUNT(*) FROM resource_versions WHERE source = :s "
                                  "AND kind = 'azure.management_groups.member' AND "
                                  "valid_to_run IS NULL", s=AZURE)
    assert members == [(2,)]
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_management_group_that_answers_403_fails_alone(
        tmp_path, sqlite_url, tenant: Tenant, capsys) -> None:
    in_groups(tenant.state)
    tenant.state.denied_groups.add(DEV_GROUP)
    config = _prepared(capsys, _azure_config(tmp_path, sqlite_url, tenant,
                                             [PROD_GROUP, DEV_GROUP]))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 1, out + err
    runs = _last_runs(sqlite_url)
    _, status, message = runs[f"{AZURE}/{DEV_GROUP}"]
    assert status == "failed"
    assert f"management group(s) {DEV_GROUP}" in (message or "")
    assert "HTTP 403 AuthorizationFailed" in (message or "")
    assert runs[f"{AZURE}/{PROD_GROUP}"][1] == "complete"
    assert runs[AZURE][1] == "complete"
    assert _scopes(sqlite_url, f"{AZURE}/{DEV_GROUP}") == set()
    check = _check(controls_json(capsys, config), AZURE_CHECK)
    assert check["status"] == "fail", check
    assert f"{DEV_GROUP} never collected: last run failed" in check["failures"][0]["reason"]
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_management_group_no_longer_named_is_retired_with_its_history(
        tmp_path, sqlite_url, tenant: Tenant, capsys) -> None:
    in_groups(tenant.state)
    config = _prepared(capsys, _azure_config(tmp_path, sqlite_url, tenant,
                                             [PROD_GROUP, DEV_GROUP]))
    assert annexa(capsys, config, "collect")[0] == 0
    dev = f"{AZURE}/{DEV_GROUP}"
    held = _rows(sqlite_url, "SELECT COUNT(*) FROM resource_versions WHERE source = :s",
                 s=dev)[0][0]
    assert held > 0

    _azure_config(tmp_path, sqlite_url, tenant, [PROD_GROUP])
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0
    assert f"retired: management group {DEV_GROUP} is no longer collected: it is no longer " \
           "configured" in out
    retired_run, status, _ = _last_runs(sqlite_url)[dev]
    assert status == "retired"
    assert _rows(sqlite_url, "SELECT COUNT(*), MIN(valid_to_run), MAX(valid_to_run) FROM "
                             "resource_versions WHERE source = :s", s=dev) == [
        (held, retired_run, retired_run)], "its history is kept, closed at the retirement"
    assert _rows(sqlite_url, "SELECT COUNT(*) FROM check_results WHERE source = :s AND "
                             "valid_to_run IS NULL", s=dev) == [(0,)]
    check = _check(controls_json(capsys, config), AZURE_CHECK)
    assert check["status"] == "pass", check
    assert annexa(capsys, config, "collect")[0] == 0
    assert _last_runs(sqlite_url)[dev][0] == retired_run, "retired once"

    # No longer split: the last unit is retired, the source collects every subscription.
    tenant.write_config(tmp_path, sqlite_url)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0
    assert f"retired: unit {PROD_GROUP} is no longer collected: the source is no longer " \
           "split into units" in out
    assert _last_runs(sqlite_url)[f"{AZURE}/{PROD_GROUP}"][1] == "retired"
    assert _scopes(sqlite_url, AZURE) == {f"/subscriptions/{PROD}", f"/subscriptions/{DEV}"}
    assert annexa(capsys, config, "verify")[0] == 0


def _subscriptions(items: list[Any]) -> set[str]:
    return {i.scope for i in items if isinstance(i, Resource)}


def test_a_subscription_below_two_named_groups_is_the_first_named_ones(tenant: Tenant) -> None:
    in_groups(tenant.state, dev_parent=PROD_GROUP)  # dev's group nests in prod's
    outer_first = [PROD_GROUP, DEV_GROUP]
    assert _subscriptions(tenant.collect(management_groups=outer_first, unit=PROD_GROUP)) == {
        f"/subscriptions/{PROD}", f"/subscriptions/{DEV}"}
    assert _subscriptions(tenant.collect(management_groups=outer_first, unit=DEV_GROUP)) == set()
    inner_first = [DEV_GROUP, PROD_GROUP]
    assert _subscriptions(tenant.collect(management_groups=inner_first, unit=DEV_GROUP)) == {
        f"/subscriptions/{DEV}"}
    assert _subscriptions(tenant.collect(management_groups=inner_first, unit=PROD_GROUP)) == {
        f"/subscriptions/{PROD}"}


def _graph_calls(tenant: Tenant, **options: Any) -> tuple[int, set[str]]:
    tenant.api.reset_calls()
    items = tenant.collect(**options)
    calls = tenant.api.calls
    return calls["resourcegraph.query"] + calls["subscriptions.list"], {
        i.key for i in items if isinstance(i, Resource)}


def test_splitting_by_management_group_costs_a_partial_page_per_query_and_unit(
        tenant: Tenant) -> None:
    in_groups(tenant.state)
    whole, everything = _graph_calls(tenant)
    grouped, same = _graph_calls(tenant, management_groups=[PROD_GROUP, DEV_GROUP])
    assert same == everything
    split = [_graph_calls(tenant, management_groups=[PROD_GROUP, DEV_GROUP], unit=group)
             for group in (PROD_GROUP, DEV_GROUP)]
    assert set().union(*(keys for _, keys in split)) == everything, \
        "each resource is read by one unit"
    assert sum(len(keys) for _, keys in split) == len(everything)
    queries = 3  # per unit: its subscriptions, Resources, AuthorizationResources
    assert grouped <= whole + 1, "one listing of subscriptions for another"
    assert sum(n for n, _ in split) <= grouped + len(split) * queries
    # The queries' pages come from Resource Graph: ARM reads stay one per resource.
    assert sum(n for n, _ in split) > grouped, "the sample spans pages: the bound is tested"


def test_a_group_unknown_to_the_tenant_is_refused_by_resource_graph(tenant: Tenant) -> None:
    state: Azure = tenant.state
    in_groups(state)
    from connectors.azure import SourceUnreachable

    with pytest.raises(SourceUnreachable, match=r"management group\(s\) mg-nowhere .* 403"):
        tenant.collect(management_groups=["mg-nowhere"])


def test_management_group_options_are_validated(tenant: Tenant) -> None:
    from pydantic import ValidationError

    for options, why in (
            ({"management_groups": ["bad/id"]}, "is not a management group id"),
            ({"management_groups": ["ends."]}, "is not a management group id"),
            ({"management_groups": ["a", "A"]}, "listed twice"),
            ({"management_groups": ["a"], "subscriptions": [PROD]}, "not both"),
            ({"management_groups": ["a"], "unit": "b"}, "is not one of management_groups")):
        with pytest.raises(ValidationError, match=why):
            tenant.settings(**options)
    assert tenant.settings(management_groups=["Landing.Zones(eu)-1_a"]).management_groups


def test_doctor_asks_resource_graph_at_the_first_management_group(tenant: Tenant) -> None:
    from collector.config import SourceConfig
    from collector.demo.emulators.azure import source
    from collector.doctor import examine

    in_groups(tenant.state)

    def graph_read() -> str:
        options = {k: v for k, v in source(tenant.api).items() if k not in ("name", "kind")}
        report = examine(SourceConfig.model_validate({
            "name": AZURE, "kind": "azure", **options,
            "management_groups": [DEV_GROUP, PROD_GROUP]}))
        return next(c.status for c in report.checks
                    if c.permission == "Microsoft.ResourceGraph/resources/read")

    assert graph_read() == "granted"
    tenant.state.denied_groups.add(DEV_GROUP)
    assert graph_read() == "denied"


# --- GCP folders -----------------------------------------------------------------------------

def test_each_folder_is_a_unit_with_its_projects(cloud, tmp_path, sqlite_url, capsys) -> None:
    config = _prepared(capsys, _gcp_config(tmp_path, sqlite_url, cloud,
                                           [PROD_FOLDER, LAB_FOLDER]))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    runs = _last_runs(sqlite_url)
    assert set(runs) == {GCP, f"{GCP}/{PROD_FOLDER}", f"{GCP}/{LAB_FOLDER}"}
    assert {status for _, status, _ in runs.values()} == {"complete"}, runs
    assert _scopes(sqlite_url, f"{GCP}/{PROD_FOLDER}") == {scope_key(GAPS), scope_key(TWIN)}
    assert _scopes(sqlite_url, f"{GCP}/{LAB_FOLDER}") == {scope_key(LAB)}
    controls = controls_json(capsys, config)
    assert _check(controls, GCP_CHECK)["status"] == "pass"
    failing = failing_by_check(controls)
    # Audit configs set on the organization are above the folders read, so whether a project
    # inherits data access logs is unknown there (an error, not a pass), split or not.
    planted = {c: keys for c, keys in sample.planted().items()
               if c != "gcp.project_data_access_audit_logs"}
    assert {c: failing.get(c, set()) for c in planted} == planted
    assert annexa(capsys, config, "verify")[0] == 0


def test_a_folder_that_answers_403_fails_alone_and_one_unnamed_is_retired(
        cloud, tmp_path, sqlite_url, capsys) -> None:
    config = _prepared(capsys, _gcp_config(tmp_path, sqlite_url, cloud,
                                           [PROD_FOLDER, LAB_FOLDER]))
    cloud.denied.add(f"folders/{LAB_FOLDER}")
    assert annexa(capsys, config, "collect")[0] == 1
    runs = _last_runs(sqlite_url)
    lab = f"{GCP}/{LAB_FOLDER}"
    assert runs[lab][1] == "failed"
    assert "PERMISSION_DENIED" in (runs[lab][2] or "") or "403" in (runs[lab][2] or "")
    assert runs[f"{GCP}/{PROD_FOLDER}"][1] == "complete"
    check = _check(controls_json(capsys, config), GCP_CHECK)
    assert check["status"] == "fail"
    assert f"{LAB_FOLDER} never collected: last run failed" in check["failures"][0]["reason"]

    cloud.denied.clear()
    assert annexa(capsys, config, "collect")[0] == 0
    assert _check(controls_json(capsys, config), GCP_CHECK)["status"] == "pass"
    held = _rows(sqlite_url, "SELECT COUNT(*) FROM resource_versions WHERE source = :s",
                 s=lab)[0][0]
    assert held > 0

    _gcp_config(tmp_path, sqlite_url, cloud, [PROD_FOLDER])
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0
    assert f"retired: folder {LAB_FOLDER} is no longer collected: it is no longer " \
           "configured" in out
    retired_run, status, _ = _last_runs(sqlite_url)[lab]
    assert status == "retired"
    assert _rows(sqlite_url, "SELECT COUNT(*), MIN(valid_to_run) FROM resource_versions "
                             "WHERE source = :s", s=lab) == [(held, retired_run)]
    assert _check(controls_json(capsys, config), GCP_CHECK)["status"] == "pass"
    code, out, err = annexa(capsys, config, "status", "--format", "json")
    units = {u["name"]: u for u in json.loads(out)["sources"][0]["units"]}
    assert code == 0, out + err
    assert units[lab]["freshness"] == "retired"
    assert units[f"{GCP}/{PROD_FOLDER}"]["freshness"] == "fresh"
    assert annexa(capsys, config, "verify")[0] == 0


def test_splitting_by_folder_costs_a_partial_page_per_listing_and_unit(cloud, tmp_path) -> None:
    folders = [PROD_FOLDER, LAB_FOLDER]

    def listed(**options: Any) -> tuple[int, set[str]]:
        observed: list[tuple[str, str, int, int]] = []
        items = collected(source_options(cloud, tmp_path, **options), observed)
        return len(observed), {i.key for i in items if isinstance(i, Resource)}

    organization, everything = listed(organization=sample.ORG)
    whole, _ = listed(folders=folders)
    split = [listed(folders=folders, unit=folder) for folder in folders]
    assert set().union(*(keys for _, keys in split)) == everything
    assert sum(len(keys) for _, keys in split) == len(everything)
    # One source of several folders already lists each folder on its own.
    assert sum(n for n, _ in split) == whole
    listings = 3  # per unit: its projects, the IAM policies, the other assets
    assert organization < whole <= organization + len(split) * listings


def test_a_project_below_two_named_folders_is_the_first_named_ones(cloud, tmp_path) -> None:
    # The lab folder is moved into the prod folder: the lab project is below both. Its
    # assets share one list of ancestors (the wire format's too).
    chains = {id(a.ancestors): a.ancestors for a in cloud.assets
              if f"folders/{LAB_FOLDER}" in a.ancestors}
    for chain in chains.values():
        chain.insert(chain.index(f"folders/{LAB_FOLDER}") + 1, f"folders/{PROD_FOLDER}")
    outer_first = [PROD_FOLDER, LAB_FOLDER]

    def projects(folders: list[str], unit: str) -> set[str]:
        return {i.scope for i in collected(source_options(cloud, tmp_path, folders=folders,
                                                          unit=unit))
                if isinstance(i, Resource)}

    assert projects(outer_first, PROD_FOLDER) == {scope_key(n) for n in (GAPS, TWIN, LAB)}
    assert projects(outer_first, LAB_FOLDER) == set()
    assert projects([LAB_FOLDER, PROD_FOLDER], PROD_FOLDER) == {
        scope_key(n) for n in (GAPS, TWIN)}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_cluster_collects_each_folder_as_a_task(
        cloud, tmp_path, database_url, broker, workers, capsys) -> None:
    config = _prepared(capsys, _queued(_gcp_config(tmp_path, database_url, cloud,
                                                   [PROD_FOLDER, LAB_FOLDER]), broker))
    workers.append(Workers(config, count=1, concurrency=2, logs=tmp_path))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    runs = _last_runs(database_url)
    assert {status for _, status, _ in runs.values()} == {"complete"}, runs
    assert _scopes(database_url, f"{GCP}/{PROD_FOLDER}") == {scope_key(GAPS), scope_key(TWIN)}
    assert _scopes(database_url, f"{GCP}/{LAB_FOLDER}") == {scope_key(LAB)}
    log = (tmp_path / "worker0.log").read_text()
    for folder in (PROD_FOLDER, LAB_FOLDER):
        assert f"of {GCP}/{folder}: complete" in log, "each folder is a worker's task"
    assert _check(controls_json(capsys, config), GCP_CHECK)["status"] == "pass"
    assert annexa(capsys, config, "verify")[0] == 0
