"""The Google Workspace connector and its checks against the loopback fake of the Admin SDK
and the Cloud Identity Policy API, through the real google-auth JWT flow: planted gaps and
their twins, paging, Google's throttling answers, denials, expired and revoked credentials,
malformed answers and missing fields."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from werkzeug.wrappers import Request, Response

from checks.registry import REGISTRY, load_all
from collector import config as configuration
from collector.demo.emulators import google_workspace as fake
from collector.evaluate import evaluate_all
from collector.model import Resource, Scope
from connectors.google_workspace import CredentialsUnavailable, SourceUnreachable
from connectors.google_workspace.credentials import DIRECTORY_SCOPES, POLICY_SCOPES
from tests.google_workspace_support import (
    CHECKS,
    GAPS,
    PAGE_SIZE,
    TWIN,
    Observed,
    collected,
    errors,
    evidence,
    source_options,
    workspace,
    workspace_server,
)
from tests.helpers import assert_failures_are_planted

__all__ = ["workspace", "workspace_server"]  # fixtures

POLICY_CHECKS = {"google_workspace.two_step_verification_enforced",
                 "google_workspace.password_policy_strong",
                 "google_workspace.less_secure_apps_disabled",
                 "google_workspace.super_admin_account_recovery_disabled"}
USER_CHECKS = {"google_workspace.user_2sv_enrolled", "google_workspace.admin_2sv_enrolled",
               "google_workspace.user_2sv_enforced", "google_workspace.inactive_user_suspended"}


def _verdicts(items: list, check_id: str) -> dict[str, tuple[str, str]]:
    load_all()
    return {o.subject: (o.verdict.status, o.verdict.reason) for o in evaluate_all(items)
            if o.check.id == check_id}


def test_each_check_fails_on_exactly_the_planted_keys_and_passes_the_twins(workspace, tmp_path):
    observed: Observed = []
    items = [item for tenant in (GAPS, TWIN)
             for item in collected(source_options(workspace, tmp_path, tenant), observed)]
    load_all()
    assert len(CHECKS) >= 8
    assert {c for c in REGISTRY if c.startswith("google_workspace.")} == CHECKS
    assert_failures_are_planted(fake.planted(), items, set(CHECKS))

    scopes = [i for i in items if isinstance(i, Scope)]
    assert [(s.id, s.key) for s in scopes] == [
        (GAPS.id, f"google_workspace:customer:{GAPS.id}"),
        (TWIN.id, f"google_workspace:customer:{TWIN.id}")]
    users = [r for r in items if isinstance(r, Resource) and r.kind == "google_workspace.user"]
    assert len(users) == len(GAPS.people) + len(TWIN.people)
    assert all(r.key == f"google_workspace:user:{r.data['id']}" for r in users)
    # Small pages all read, and every call counted for the metrics.
    calls = workspace.api.calls
    assert calls["users.list"] == sum(math.ceil(len(t.people) / PAGE_SIZE) for t in (GAPS, TWIN))
    assert calls["policies.list"] == sum(math.ceil(len(t.settings) / PAGE_SIZE)
                                         for t in (GAPS, TWIN))
    assert len(observed) == workspace.api.total_calls - calls["oauth2.token"]
    assert calls["oauth2.token"] == 4  # one token per API and customer
    # Only the fields the checks read are kept as evidence: no names, phones or etags.
    assert set(users[0].data) <= {"id", "primaryEmail", "orgUnitPath", "isAdmin",
                                  "isDelegatedAdmin", "isEnrolledIn2Sv", "isEnforcedIn2Sv",
                                  "suspended", "suspensionReason", "archived",
                                  "lastLoginTime", "creationTime"}


@pytest.mark.parametrize("answer", [
    lambda r: fake.quota_403(r, "userRateLimitExceeded"),
    lambda r: fake.quota_403(r, "rateLimitExceeded"),
    lambda r: fake.quota_403(r, "quotaExceeded"),
    fake.exhausted_429,
    fake.backend_500,
], ids=["403-userRateLimitExceeded", "403-rateLimitExceeded", "403-quotaExceeded",
        "429-RESOURCE_EXHAUSTED", "500"])
def test_throttling_and_transient_failures_are_survived_with_identical_results(
        workspace, tmp_path, answer):
    clean = collected(source_options(workspace, tmp_path))
    workspace.api.reset_calls()
    # Every third call of the APIs, across their routes; the token endpoint answers as ever.
    # Not every other one: the reads run in parallel, so under load one request could draw
    # the refusal on each of its attempts and run out of retries.
    workspace.api.throttle_every(3, answer, pattern=r"^/(admin|v1)/")
    observed: Observed = []
    throttled = collected(source_options(workspace, tmp_path), observed)
    assert not errors(throttled)
    assert evidence(throttled) == evidence(clean)
    assert sum(retries for *_, retries in observed) >= len(observed) // 4


def test_a_storm_of_rate_limit_refusals_is_waited_out(workspace, tmp_path):
    clean = collected(source_options(workspace, tmp_path))
    workspace.api.fail(r"/users\?", fake.quota_403, times=6)
    workspace.api.fail(r"/v1/policies", fake.exhausted_429, times=6)
    observed: Observed = []
    stormy = collected(source_options(workspace, tmp_path), observed)
    assert evidence(stormy) == evidence(clean)
    assert ("admin", "users.list", 200, 6) in observed
    assert ("cloudidentity", "policies.list", 200, 6) in observed


def test_a_real_403_is_a_denial_that_errors_its_checks_and_nothing_else(workspace, tmp_path):
    # A delegated admin reads the directory, but only a super admin may use the Policy API.
    items = collected(source_options(workspace, tmp_path, admin="carol"))
    [denied] = errors(items)
    assert denied.kinds == ("google_workspace.policy",)
    assert denied.message == ("policies.list: HTTP 403 PERMISSION_DENIED: The caller does not "
                              "have permission")
    assert workspace.api.calls["policies.list"] == 1, "a denial is not retried"
    load_all()
    outcomes = [o for o in evaluate_all(items) if o.check.id in CHECKS]
    for check_id in POLICY_CHECKS:
        [only] = [o for o in outcomes if o.check.id == check_id]
        assert only.verdict.status == "error" and "HTTP 403" in only.verdict.reason
    judged = {o.verdict.status for o in outcomes if o.check.id in USER_CHECKS}
    assert judged == {"pass", "fail", "not_applicable"}


def test_a_forbidden_listing_errors_the_super_admin_count(workspace, tmp_path):
    workspace.api.fail(r"/roleassignments", fake.forbidden_403)
    items = collected(source_options(workspace, tmp_path))
    [denied] = errors(items)
    assert denied.message == ("roleAssignments.list: HTTP 403 (forbidden): Not Authorized to "
                              "access this resource/api")
    [(status, reason)] = _verdicts(items, "google_workspace.super_admin_count_between_2_and_4"
                                   ).values()
    assert status == "error" and "roleAssignments.list: HTTP 403" in reason
    assert _verdicts(items, "google_workspace.password_policy_strong") == {
        f"google_workspace:customer:{GAPS.id}": ("fail", "the password policy: /Contractors "
                                                 "(strength WEAK, minimum length 8 < 12, "
                                                 "reuse allowed)")}


def test_a_scope_not_delegated_costs_only_its_api(workspace, tmp_path):
    items = collected(source_options(workspace, tmp_path, scopes=DIRECTORY_SCOPES))
    [refused] = errors(items)
    assert refused.kinds == ("google_workspace.policy",)
    assert refused.message == ("policies.list: HTTP 401 CredentialUnavailable: RefreshError: "
                               "unauthorized_client: Client is unauthorized to retrieve access "
                               "tokens using this method, or client not authorized for any of "
                               "the scopes requested.")
    assert len([i for i in items if getattr(i, "kind", "") == "google_workspace.user"]) == 10


def test_an_expired_token_is_renewed_and_nothing_is_lost(workspace, tmp_path):
    clean = collected(source_options(workspace, tmp_path))
    before = workspace.accounts.token_requests

    def expire(request: Request) -> Response:
        workspace.accounts.tokens.expire_all()
        return fake.unauthenticated_401(request)

    workspace.api.fail(r"/users\?.*pageToken=", expire, times=1)
    renewed = collected(source_options(workspace, tmp_path))
    assert evidence(renewed) == evidence(clean)
    # Two tokens for the run; then each listing that met the expired token renews it.
    assert 3 <= workspace.accounts.token_requests - before <= 6


def test_a_revoked_key_makes_the_source_unreachable_with_the_cause(workspace, tmp_path):
    options = source_options(workspace, tmp_path)
    workspace.accounts.keys.clear()
    with pytest.raises(SourceUnreachable, match=r"customers.get: HTTP 401 CredentialUnavailable: "
                                                r"RefreshError: invalid_grant: Invalid JWT: "
                                                r"unknown service account"):
        collected(options)


def test_a_malformed_page_errors_what_it_held_and_the_rest_goes_on(workspace, tmp_path):
    workspace.api.fail(r"/users\?.*pageToken=",
                       Response(b"<html>Service Unavailable</html>", 200,
                                content_type="text/html"), times=1)
    items = collected(source_options(workspace, tmp_path))
    [broken] = errors(items)
    assert broken.kinds == ("google_workspace.user",)
    assert "users.list: HTTP 200 MalformedResponse: the answer is not JSON (text/html" in (
        broken.message)
    users = [i for i in items if getattr(i, "kind", "") == "google_workspace.user"]
    assert len(users) == PAGE_SIZE, "the first page is kept"
    units = [i for i in items if getattr(i, "kind", "") == "google_workspace.org_unit"]
    assert all("could not all be listed" in u.data["_errors"]["userCount"] for u in units)
    # Org units whose users are unknown cannot be let off: never a pass.
    [(status, reason)] = _verdicts(items, "google_workspace.two_step_verification_enforced"
                                   ).values()
    assert status == "error" and "its users could not be counted" in reason, reason
    [(status, _)] = _verdicts(items, "google_workspace.password_policy_strong").values()
    assert status == "error"
    load_all()
    user_errors = [o for o in evaluate_all(items)
                   if o.check.id in USER_CHECKS and o.verdict.status == "error"]
    assert {o.subject for o in user_errors} == {f"google_workspace:customer:{GAPS.id}#*"}


def test_a_missing_field_errors_only_the_checks_that_read_it(workspace, tmp_path):
    customer = workspace.customers[GAPS.id]
    dave = customer.by_email[f"dave@{GAPS.domain}"]
    del dave["isEnrolledIn2Sv"]
    items = collected(source_options(workspace, tmp_path))
    assert not errors(items)
    key = f"google_workspace:user:{dave['id']}"
    assert _verdicts(items, "google_workspace.user_2sv_enrolled")[key] == (
        "error", "isEnrolledIn2Sv missing from the user record")
    assert _verdicts(items, "google_workspace.admin_2sv_enrolled")[key][0] == "error"
    assert _verdicts(items, "google_workspace.user_2sv_enforced")[key][0] == "pass"
    assert _verdicts(items, "google_workspace.inactive_user_suspended")[key][0] == "pass"


def test_a_policy_without_its_setting_value_is_an_error(workspace, tmp_path):
    policy = next(p for p in workspace.customers[GAPS.id].policies
                  if p["setting"]["type"] == "settings/security.password")
    del policy["setting"]["value"]
    items = collected(source_options(workspace, tmp_path))
    [(status, reason)] = _verdicts(items, "google_workspace.password_policy_strong").values()
    assert status == "error" and "has no policyQuery or setting value" in reason


def test_no_policy_for_a_setting_without_a_documented_default_is_an_error(workspace, tmp_path):
    workspace.customers[TWIN.id].policies[:] = [
        p for p in workspace.customers[TWIN.id].policies
        if p["setting"]["type"] != "settings/security.password"]
    items = collected(source_options(workspace, tmp_path, TWIN))
    [(status, reason)] = _verdicts(items, "google_workspace.password_policy_strong").values()
    assert status == "error" and "no security.password policy applies" in reason
    # Less secure apps and super admin recovery have documented defaults (off): still judged.
    assert {s for s, _ in _verdicts(items, "google_workspace.less_secure_apps_disabled"
                                    ).values()} == {"pass"}


def test_a_group_that_exempts_its_members_fails_the_enforcement(workspace, tmp_path):
    twin = workspace.customers[TWIN.id]
    group = next(p for p in twin.policies if p["policyQuery"].get("group"))
    group["setting"]["value"] = {"enforcedFrom": "1970-01-01T00:00:00Z"}
    items = collected(source_options(workspace, tmp_path, TWIN))
    [(status, reason)] = _verdicts(items, "google_workspace.two_step_verification_enforced"
                                   ).values()
    assert (status, reason) == ("fail", "2-Step Verification enforcement: group "
                                        f"{group['policyQuery']['group']} (not enforced)")


def test_an_unknown_customer_or_missing_key_stops_the_source(workspace, tmp_path):
    options = source_options(workspace, tmp_path, customer="C09nobody1")
    with pytest.raises(SourceUnreachable, match=r"customers.get: HTTP 403 \(forbidden\)"):
        collected(options)
    options = source_options(workspace, tmp_path, admin="dave")  # no admin at all
    with pytest.raises(SourceUnreachable, match="Not Authorized to access this resource/api"):
        collected(options)


def test_application_default_credentials_are_used_when_no_key_file_is_named(
        workspace, tmp_path, monkeypatch):
    options = source_options(workspace, tmp_path, customer=GAPS.id)  # its ID, not my_customer
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", options.pop("credentials_file"))
    items = collected(options)
    assert not errors(items) and len(evidence(items)) == 31
    assert [i.id for i in items if isinstance(i, Scope)] == [GAPS.id]

    user_creds = tmp_path / "adc-user.json"
    user_creds.write_text(json.dumps({"type": "authorized_user", "client_id": "x",
                                      "client_secret": "y", "refresh_token": "z"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user_creds))
    with pytest.raises(CredentialsUnavailable, match=r"cannot impersonate ada@example\.com"):
        collected(options)


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("customer", "acme", "sources[0].customer: String should match pattern"),
    ("admin_email", "not-an-email", "sources[0].admin_email: String should match pattern"),
    ("api_endpoint", "http://127.0.0.1:1", "sources[0].api_endpoint: String should match"),
    ("credentials_file", "missing.json", "missing.json: cannot read: No such file"),
    ("credentials_file", "user.json", "holds authorized_user credentials, not a service-"
                                      "account key"),
    ("customers", "my_customer", "sources[0].customers: Extra inputs are not permitted"),
], ids=["customer", "admin_email", "api_endpoint", "missing-key", "user-key", "typo"])
def test_a_bad_source_option_is_named(tmp_path: Path, option, value, problem):
    (tmp_path / "user.json").write_text(json.dumps({"type": "authorized_user"}))
    source = {"name": "ws", "kind": "google_workspace", "admin_email": "ada@example.com",
              option: value}
    path = tmp_path / "annexa.yaml"
    path.write_text(json.dumps({"sources": [source]}))
    with pytest.raises(configuration.ConfigError) as error:
        configuration.load(path)
    assert problem in str(error.value) and str(path) in str(error.value)


def test_admin_email_is_required(tmp_path: Path):
    path = tmp_path / "annexa.yaml"
    path.write_text(json.dumps({"sources": [{"name": "ws", "kind": "google_workspace"}]}))
    with pytest.raises(configuration.ConfigError, match=r"sources\[0\].admin_email: Field "
                                                        "required"):
        configuration.load(path)


def test_the_demo_customer_collects_with_exactly_its_planted_gaps(tmp_path):
    demo = fake.start_demo(tmp_path)
    try:
        options = {k: v for k, v in demo.source.items() if k not in ("name", "kind",
                                                                       "schedule")}
        items = collected({**options, "backoff": 0})
    finally:
        demo.stop()
    scope_checks = {c for c in CHECKS if load_all()[c].is_scope_check}
    assert_failures_are_planted(demo.planted, items, set(CHECKS), frozenset(scope_checks))


def test_the_shipped_delegation_scopes_are_exactly_those_asked_for():
    shipped = Path(__file__).parent.parent / "config" / "google_workspace"
    listed = (shipped / "delegated-scopes.txt").read_text().split()
    assert listed == [*DIRECTORY_SCOPES, *POLICY_SCOPES]
    assert all(scope.endswith(".readonly") for scope in listed)
    assert ",".join(listed) in (shipped / "README.md").read_text()
