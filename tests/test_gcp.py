"""The GCP connector against the loopback fake of Cloud Asset Inventory, through the real
google-cloud-asset client (REST transport) and the real google-auth self-signed JWT: keys and
scopes, paging over small pages, quota refusals, a denied project, an expired or unknown
credential, malformed assets and pages, and the source's options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError
from werkzeug.wrappers import Response

from checks.registry import REGISTRY, load_all
from collector.demo.emulators import gcp as fake
from collector.demo.emulators import gcp_sample as sample
from collector.evaluate import evaluate_all
from collector.model import ALL_REGIONS, FETCH_ERRORS, Resource, Scope
from connectors.gcp import CredentialsUnavailable, Settings, SourceUnreachable, collect
from connectors.gcp.kinds import ALL_KINDS, KINDS
from tests.gcp_support import (
    GAPS,
    LAB,
    PAGE_SIZE,
    TWIN,
    Observed,
    cloud,
    collected,
    gcp_server,
    of_kind,
    scope_key,
    source_options,
)
from tests.helpers import assert_failures_are_planted, errors, evidence

__all__ = ["cloud", "gcp_server"]  # fixtures


def _pages(count: int) -> int:
    return max(math.ceil(count / PAGE_SIZE), 1)


def test_every_kind_is_collected_keyed_by_full_resource_name_in_its_project(cloud, tmp_path):
    observed: Observed = []
    items = collected(source_options(cloud, tmp_path), observed)
    assert not errors(items)
    scopes = [i for i in items if isinstance(i, Scope)]
    assert [(s.provider, s.id, s.key) for s in scopes] == [
        ("gcp", scope_key(n), scope_key(n)) for n in (GAPS, LAB, TWIN)]
    # Every scope comes before any resource of it.
    first = {s.key: items.index(s) for s in scopes}
    assert all(first[r.scope] < index for index, r in enumerate(items)
               if isinstance(r, Resource))
    org = sample.sample_org()
    seeded = {a.name for p in org.projects for a in p.assets} | {
        scope_key(p.number) for p in org.projects}
    assert {r.key for r in items if isinstance(r, Resource)} == seeded
    assert {r.kind for r in items if isinstance(r, Resource)} == set(ALL_KINDS)
    [bucket] = [r for r in of_kind(items, "gcp.storage.bucket")
                if r.key == "//storage.googleapis.com/gaps-public-assets"]
    assert bucket.scope == scope_key(GAPS) and bucket.region == "us"
    assert bucket.data["resource"]["iamConfiguration"]["uniformBucketLevelAccess"] == {
        "enabled": True}
    assert {"role": "roles/storage.objectViewer", "members": ["allUsers"]} in (
        bucket.data["iamPolicy"]["bindings"])
    [firewall] = [r for r in of_kind(items, "gcp.compute.firewall")
                  if r.key.endswith("/global/firewalls/allow-ssh")]
    assert firewall.key == "//compute.googleapis.com/projects/gaps-prod/global/firewalls/allow-ssh"
    # What organizations and folders pass down is joined to each project.
    [lab] = [r for r in of_kind(items, "gcp.project") if r.key == scope_key(LAB)]
    assert lab.data["inheritedAuditConfigs"] == [
        {"ancestor": "folders/789", "auditConfigs": []},
        {"ancestor": f"organizations/{sample.ORG}", "auditConfigs": []}]
    assert FETCH_ERRORS not in lab.data

    # Small pages all read: one listing of projects, one of IAM policies, one of the rest.
    listed = cloud.assets
    resources = [a for a in listed if a.asset_type != "cloudresourcemanager.googleapis.com/"
                 "Project" and a.resource and "Folder" not in a.asset_type
                 and "Organization" not in a.asset_type]
    policies = [a for a in listed if a.iam is not None]
    assert cloud.api.calls["assets.list"] == (_pages(len(org.projects)) + _pages(len(policies))
                                              + _pages(len(resources)))
    assert len(observed) == cloud.api.calls["assets.list"]
    assert {(s, o) for s, o, _, _ in observed} == {("cloudasset", "assets.list")}
    # The service account signs its own JWT for cloudasset: no token exchange.
    assert cloud.api.calls["oauth2.token"] == 0


def test_quota_refusals_are_retried_and_change_nothing(cloud, tmp_path):
    clean = collected(source_options(cloud, tmp_path))
    cloud.api.throttle_every(2, fake.exhausted_429)
    observed: Observed = []
    throttled = collected(source_options(cloud, tmp_path), observed)
    assert not errors(throttled)
    assert evidence(throttled) == evidence(clean)
    assert sum(retries for *_, retries in observed) >= len(observed) // 2 > 0


def test_a_denied_project_errors_its_scope_and_the_others_go_on(cloud, tmp_path):
    cloud.denied.add(f"projects/{TWIN}")
    items = collected(source_options(cloud, tmp_path,
                                     projects=["gaps-prod", "twin-prod", LAB]))
    [denied] = errors(items)
    assert denied.scope == "//cloudresourcemanager.googleapis.com/projects/twin-prod"
    assert denied.kinds == ALL_KINDS and denied.region == ALL_REGIONS
    assert denied.message == ("assets.list: HTTP 403 PERMISSION_DENIED: The caller does not "
                              "have permission")
    assert [s.key for s in items if isinstance(s, Scope)] == [
        scope_key(GAPS), "//cloudresourcemanager.googleapis.com/projects/twin-prod",
        scope_key(LAB)]
    assert {r.scope for r in items if isinstance(r, Resource)} == {scope_key(GAPS),
                                                                   scope_key(LAB)}
    # A project read on its own does not read its folder's policy: what it inherits is unknown.
    [gaps] = [r for r in of_kind(items, "gcp.project") if r.key == scope_key(GAPS)]
    assert gaps.data["inheritedAuditConfigs"] == []
    assert "folders/456, organizations/123456789012 are outside projects/gaps-prod" in (
        gaps.data[FETCH_ERRORS]["inheritedAuditConfigs"])


def test_every_parent_denied_makes_the_source_unreachable(cloud, tmp_path):
    cloud.denied.add(f"organizations/{sample.ORG}")
    with pytest.raises(SourceUnreachable, match=r"organizations/123456789012: assets.list: "
                                                r"HTTP 403 PERMISSION_DENIED"):
        collected(source_options(cloud, tmp_path))


def test_an_expired_token_is_renewed_and_nothing_is_lost(cloud, tmp_path):
    clean = collected(source_options(cloud, tmp_path))
    cloud.api.fail(r"/assets\?.*pageToken=", fake.unauthenticated_401, times=1)
    observed: Observed = []
    renewed = collected(source_options(cloud, tmp_path), observed)
    assert not errors(renewed)
    assert evidence(renewed) == evidence(clean)
    assert sum(retries for *_, retries in observed) == 1


def test_a_credential_refused_at_every_call_stops_the_source_with_the_cause(cloud, tmp_path):
    options = source_options(cloud, tmp_path)
    cloud.accounts.keys.clear()  # the key is deleted: its JWTs no longer verify
    with pytest.raises(SourceUnreachable, match=r"assets.list: HTTP 401 UNAUTHENTICATED: "
                                                r"Request had invalid authentication"):
        collected(options)


def test_an_asset_without_its_data_errors_that_asset_and_the_rest_goes_on(cloud, tmp_path):
    broken = next(a for a in cloud.assets if a.asset_type == "storage.googleapis.com/Bucket")
    assert broken.resource is not None
    del broken.resource["resource"]["data"]
    items = collected(source_options(cloud, tmp_path))
    [error] = errors(items)
    assert error.key == broken.resource["name"] and error.kinds == ("gcp.storage.bucket",)
    assert error.scope == scope_key(GAPS)
    assert "came without its resource data" in error.message
    assert broken.resource["name"] not in {r.key for r in of_kind(items, "gcp.storage.bucket")}
    assert len(of_kind(items, "gcp.storage.bucket")) == 3
    assert len(of_kind(items, "gcp.compute.firewall")) == 7


def test_a_malformed_page_errors_its_kinds_in_every_project_and_keeps_the_rest(cloud, tmp_path):
    cloud.api.fail(r"contentType=1.*pageToken=", Response(
        json.dumps({"assets": [{"name": 7, "resource": "nope"}]}), 200,
        content_type="application/json"), times=1)
    items = collected(source_options(cloud, tmp_path))
    found = errors(items)
    assert {e.scope for e in found} == {scope_key(n) for n in (GAPS, LAB, TWIN)}
    others = tuple(k.kind for k in KINDS if k.kind != "gcp.project")
    assert all(e.kinds == others and "MalformedResponse" in e.message for e in found)
    assert "is not a ListAssetsResponse" in found[0].message
    assert len(of_kind(items, "gcp.project")) == 3
    assert len([r for r in items if isinstance(r, Resource)]) == 3 + PAGE_SIZE


def test_iam_policies_that_cannot_be_listed_are_marked_on_what_needs_them(cloud, tmp_path):
    cloud.api.fail(r"contentType=2", fake.denied_403)
    items = collected(source_options(cloud, tmp_path))
    assert not errors(items)
    for resource in items:
        if isinstance(resource, Resource) and resource.kind in {
                k.kind for k in KINDS if k.iam}:
            assert "HTTP 403 PERMISSION_DENIED" in resource.data[FETCH_ERRORS]["iamPolicy"]
            assert resource.data["iamPolicy"] is None


def test_folders_are_parents_of_their_projects(cloud, tmp_path):
    items = collected(source_options(cloud, tmp_path, folders=["456"]))
    assert [s.key for s in items if isinstance(s, Scope)] == [scope_key(GAPS), scope_key(TWIN)]
    [gaps] = [r for r in of_kind(items, "gcp.project") if r.key == scope_key(GAPS)]
    assert [a["ancestor"] for a in gaps.data["inheritedAuditConfigs"]] == ["folders/456"]
    assert "organizations/123456789012 are outside folders/456" in (
        gaps.data[FETCH_ERRORS]["inheritedAuditConfigs"])


@pytest.mark.parametrize(("options", "problem"), [
    ({}, "exactly one of organization, folders, projects"),
    ({"organization": "1", "projects": ["my-project"]}, "got organization, projects"),
    ({"organization": "acme"}, "not an organization number"),
    ({"folders": ["folders/x"]}, "not a folder number"),
    ({"projects": ["My_Project"]}, "not a project id or number"),
    ({"projects": ["my-project", "projects/my-project"]}, "listed twice"),
    ({"organization": "1", "api_endpoint": "http://cloudasset.googleapis.com"},
     "api_endpoint"),
    ({"organization": "1", "page_size": 5000}, "page_size"),
])
def test_a_bad_source_option_is_named(options, problem):
    with pytest.raises(ValidationError, match=problem):
        Settings.model_validate(options)


def test_a_credentials_file_that_is_not_one_is_named(tmp_path: Path):
    path = tmp_path / "key.json"
    path.write_text(json.dumps({"type": "api_key"}))
    with pytest.raises(ValidationError, match="holds api_key credentials, not a service-account"):
        Settings.model_validate({"organization": "1", "credentials_file": str(path)})
    assert Settings.model_validate({"organization": "organizations/1"}).parents == [
        "organizations/1"]


def _outcomes(items: list) -> list:
    load_all()
    return [o for o in evaluate_all(items) if o.check.id.startswith("gcp.")]


def test_each_check_fails_on_exactly_the_planted_keys_and_passes_the_twins(cloud, tmp_path):
    items = collected(source_options(cloud, tmp_path))
    load_all()
    checks = {c for c in REGISTRY if c.startswith("gcp.")}
    assert len(checks) >= 20
    assert set(sample.planted()) == checks
    assert_failures_are_planted(sample.planted(), items, checks)


def test_checks_that_need_iam_policies_say_error_when_they_cannot_be_listed(cloud, tmp_path):
    cloud.api.fail(r"contentType=2", fake.denied_403)
    outcomes = _outcomes(collected(source_options(cloud, tmp_path)))
    needing = {c.id for c in REGISTRY.values() if "iamPolicy" in c.needs}
    assert needing >= {"gcp.storage_bucket_not_public", "gcp.project_no_user_owner",
                       "gcp.project_data_access_audit_logs", "gcp.kms_key_not_public"}
    # A kind that has no resource in a project is absent there, IAM policy or not.
    judged = [o for o in outcomes if o.check.id in needing and not o.subject.endswith("#*")]
    assert judged and all(o.verdict.status == "error" for o in judged)
    assert all("iamPolicy could not be collected" in o.verdict.reason for o in judged)
    # The rest is judged as before.
    assert {o.subject for o in outcomes if o.check.id == "gcp.storage_bucket_uniform_access"
            and o.verdict.status == "fail"} == sample.planted()[
        "gcp.storage_bucket_uniform_access"]


def test_a_project_read_alone_cannot_be_let_off_data_access_logs(cloud, tmp_path):
    items = collected(source_options(cloud, tmp_path, projects=["gaps-prod", "twin-prod"]))
    verdicts = {o.subject: (o.verdict.status, o.verdict.reason) for o in _outcomes(items)
                if o.check.id == "gcp.project_data_access_audit_logs"}
    # twin-prod sets them itself; gaps-prod has them only from its folder, which is not read.
    assert verdicts[scope_key(TWIN)][0] == "pass"
    status, reason = verdicts[scope_key(GAPS)]
    assert status == "error" and "are outside projects/gaps-prod" in reason


def test_a_denied_project_errors_its_scope_checks_and_never_passes(cloud, tmp_path):
    cloud.denied.add(f"projects/{LAB}")
    items = collected(source_options(cloud, tmp_path, projects=["gaps-lab", "twin-prod"]))
    outcomes = _outcomes(items)
    lab = "//cloudresourcemanager.googleapis.com/projects/gaps-lab"
    mine = [o for o in outcomes if o.subject.startswith(lab)]
    assert mine and all(o.verdict.status == "error" for o in mine)
    assert {o.check.id for o in mine} == {c for c in REGISTRY if c.startswith("gcp.")}
    assert [o.verdict.status for o in outcomes if o.subject == scope_key(TWIN)
            and o.check.id == "gcp.project_default_network_removed"] == ["pass"]


def test_application_default_credentials_are_used_when_no_key_file_is_named(
        cloud, tmp_path, monkeypatch: pytest.MonkeyPatch):
    options = source_options(cloud, tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", options.pop("credentials_file"))
    assert not errors(collected(options))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(CredentialsUnavailable, match=r"Application Default Credentials: "
                                                     r"File .*absent\.json was not found"):
        collected(options)


def test_the_demo_serves_its_organization_with_what_it_planted(tmp_path):
    import importlib

    from collector.config import SourceConfig
    from collector.demo.emulators import DEMOS

    module = importlib.import_module("collector.demo.emulators.gcp")
    assert module.__name__ in DEMOS
    demo = module.start_demo(tmp_path)
    try:
        source = SourceConfig(**demo.source)
        items = list(collect(source.settings()))
    finally:
        demo.stop()
    assert source.kind == "gcp"
    load_all()
    assert_failures_are_planted(demo.planted, items,
                                {c for c in REGISTRY if c.startswith("gcp.")})


def test_the_shipped_custom_role_is_sufficient_and_each_permission_necessary(cloud, tmp_path):
    import yaml

    role = yaml.safe_load((Path(__file__).parents[1] / "config" / "gcp" /
                           "annexa-asset-reader-role.yaml").read_text())
    granted = set(role["includedPermissions"])
    cloud.permissions = granted
    assert not errors(collected(source_options(cloud, tmp_path)))
    assert granted == {"cloudasset.assets.listResource", "cloudasset.assets.listIamPolicy"}
    cloud.permissions = granted - {"cloudasset.assets.listResource"}
    with pytest.raises(SourceUnreachable, match="PERMISSION_DENIED"):
        collected(source_options(cloud, tmp_path))
    cloud.permissions = granted - {"cloudasset.assets.listIamPolicy"}
    buckets = of_kind(collected(source_options(cloud, tmp_path)), "gcp.storage.bucket")
    assert buckets and all("PERMISSION_DENIED" in b.data[FETCH_ERRORS]["iamPolicy"]
                           for b in buckets)


def test_a_project_named_by_two_parents_is_collected_once(cloud, tmp_path):
    once = collected(source_options(cloud, tmp_path, projects=["gaps-prod"]))
    twice = collected(source_options(cloud, tmp_path, projects=["gaps-prod", GAPS]))
    assert [s.key for s in twice if isinstance(s, Scope)] == [scope_key(GAPS)]
    assert evidence(twice) == evidence(once)


def test_a_project_without_its_name_makes_its_parent_unreadable(cloud, tmp_path):
    project = next(a for a in cloud.assets if a.asset_type.endswith("/Project"))
    assert project.resource is not None
    del project.resource["name"]
    with pytest.raises(SourceUnreachable, match=r"MalformedResponse: a project of "
                                                r"organizations/123456789012 named None"):
        collected(source_options(cloud, tmp_path))
