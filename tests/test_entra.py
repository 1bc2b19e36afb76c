"""The Entra ID connector against the Graph fake, through the real azure-identity token flow
(DefaultAzureCredential reading AZURE_CLIENT_ID/AZURE_CLIENT_SECRET): every planted gap is
found on exactly its resources, small pages and throttling change nothing, and data that is
refused, malformed or missing is an error, never a pass."""

from __future__ import annotations

import math
from typing import Any

import pytest
from werkzeug.wrappers import Response

from checks.registry import load_all
from collector.demo.emulators import entra
from collector.demo.emulators.server import json_response
from collector.evaluate import evaluate_all
from collector.model import CollectionError, Resource, Scope
from connectors.entra import SourceUnreachable
from tests.entra_support import (
    SINGLE,
    TENANT_KEY,
    EntraFake,
    entra_fake,
    entra_server,
)
from tests.helpers import assert_failures_are_planted, by_key, demo_collected

__all__ = ["entra_fake", "entra_server"]


def _entra_checks() -> set[str]:
    return {c for c in load_all() if c.startswith("entra.")}


def _verdicts(items: list[Any]) -> dict[tuple[str, str], tuple[str, str]]:
    load_all()
    return {(o.check.id, o.subject): (o.verdict.status, o.verdict.reason)
            for o in evaluate_all(items) if o.check.id.startswith("entra.")}


def test_each_check_fails_exactly_on_the_planted_resources(entra_fake: EntraFake) -> None:
    items = entra_fake.collect()
    assert isinstance(items[0], Scope) and items[0].key == TENANT_KEY
    assert len(_entra_checks()) >= 10
    assert_failures_are_planted(entra_fake.planted, items, _entra_checks(), fail_only=SINGLE)
    keys = by_key(items)
    assert {k.split(":")[1] for k in keys} == {
        "user", "policy", "role_definition", "role_assignment", "application",
        "service_principal"}
    users = [u for k, u in keys.items() if k.startswith("entra:user:")]
    assert len(users) == len(entra_fake.tenant.users)
    # Every user carries the fields its checks read, named in $select; /users alone would
    # return only its default contact fields.
    for user in users:
        assert {"accountEnabled", "userType", "createdDateTime", "signInActivity",
                "onPremisesSyncEnabled", "userRegistrationDetails"} <= set(user)
        assert "_errors" not in user


def test_small_pages_are_all_read_with_every_field_and_the_largest_page_allowed(
        entra_fake: EntraFake) -> None:
    entra_fake.api.page_size = 2
    counted = by_key(entra_fake.collect())
    tenant, api = entra_fake.tenant, entra_fake.api
    assert sum(k.startswith("entra:user:") for k in counted) == len(tenant.users)
    assert sum(k.startswith("entra:service_principal:") for k in counted) == len(
        tenant.service_principals)
    assert api.calls["graph.users"] == math.ceil(len(tenant.users) / 2)
    assert api.calls["graph.servicePrincipals"] == math.ceil(len(tenant.service_principals) / 2)
    assert api.calls["graph.roleManagement/directory/roleAssignments"] == math.ceil(
        len(tenant.role_assignments) / 2)
    # Next links carry the first page's query; the last page's shows what was asked.
    users = api.queries["graph.users"]
    assert users["$top"] == "500", "Graph serves at most 500 users a page with signInActivity"
    assert {"id", "accountEnabled", "userType", "createdDateTime", "signInActivity",
            "onPremisesSyncEnabled"} <= set(users["$select"].split(","))
    registrations = "graph.reports/authenticationMethods/userRegistrationDetails"
    assert api.queries[registrations]["$top"] == "999"
    assert api.queries["graph.applications"]["$top"] == "999"
    assert "passwordCredentials" in api.queries["graph.applications"]["$select"]
    assert api.queries["graph.roleManagement/directory/roleAssignments"]["$expand"] == (
        "principal")


def test_throttling_storms_and_server_errors_change_nothing(entra_fake: EntraFake) -> None:
    calm = by_key(entra_fake.collect())
    calm_calls = entra_fake.api.total_calls
    entra_fake.api.reset_calls()
    # Every third call (across the concurrent listings) is refused: a call is refused again
    # on a retry with a chance of about 1/3, so 20 attempts all but never run out.
    entra_fake.api.throttle_every(3, entra.throttled(retry_after=0))
    entra_fake.api.fail(r"/v1\.0/applications", lambda _r: entra.graph_error(
        503, "ServiceUnavailable", "The service is temporarily unavailable."), times=3)
    stormy = entra_fake.collect(max_attempts=20)
    assert not [i for i in stormy if isinstance(i, CollectionError)]
    assert by_key(stormy) == calm
    assert entra_fake.api.total_calls > calm_calls + 3


def test_a_tenant_without_p1_is_collected_without_sign_in_activity_and_never_passes_it(
        entra_fake: EntraFake) -> None:
    entra_fake.tenant.premium = False
    items = entra_fake.collect()
    assert not [i for i in items if isinstance(i, CollectionError)]
    users = [i for i in items if isinstance(i, Resource) and i.kind == "entra.user"]
    assert len(users) == len(entra_fake.tenant.users)
    for user in users:
        assert "signInActivity" not in user.data
        assert "Entra ID P1 or P2" in user.data["_errors"]["signInActivity"]
        assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in (
            user.data["_errors"]["userRegistrationDetails"])
    verdicts = _verdicts(items)
    for check in ("entra.user.unused_account_disabled", "entra.user.mfa_registered",
                  "entra.user.admin_mfa_registered"):
        statuses = {s for (c, _), (s, _) in verdicts.items() if c == check}
        assert statuses == {"error"}, (check, statuses)
    # The rest of the tenant is judged as before.
    assert verdicts[("entra.tenant.legacy_authentication_blocked", TENANT_KEY)][0] == "fail"
    assert {s for (c, _), (s, _) in verdicts.items()
            if c == "entra.application.secrets_not_expired"} == {"pass", "fail",
                                                                 "not_applicable"}


def test_an_unreported_enabled_user_and_a_missing_field_are_errors(
        entra_fake: EntraFake) -> None:
    carol = entra_fake.user("carol.nomfa")
    entra_fake.tenant.registrations = [r for r in entra_fake.tenant.registrations
                                       if r["id"] != carol["id"]]
    oscar = entra_fake.user("oscar.staff")
    del oscar["accountEnabled"]
    app = entra_fake.tenant.applications[0]
    del app["passwordCredentials"][0]["endDateTime"]
    verdicts = _verdicts(entra_fake.collect())
    carol_key, oscar_key = f"entra:user:{carol['id']}", f"entra:user:{oscar['id']}"
    assert verdicts[("entra.user.mfa_registered", carol_key)][0] == "error"
    for check in ("entra.user.mfa_registered", "entra.user.unused_account_disabled",
                  "entra.user.admin_mfa_registered"):
        status, reason = verdicts[(check, oscar_key)]
        assert status == "error" and "accountEnabled" in reason, (check, reason)
    status, reason = verdicts[("entra.application.secrets_not_expired",
                               f"entra:application:{app['id']}")]
    assert status == "error" and "endDateTime" in reason


@pytest.mark.parametrize(("path", "service", "checks"), [
    ("roleManagement/directory/roleAssignments", "roleAssignments",
     {"entra.role_assignment.no_guest_in_privileged_role",
      "entra.tenant.global_admins_between_2_and_4"}),
    ("identity/conditionalAccess/policies", "conditionalAccess",
     {"entra.tenant.mfa_required_for_all_users", "entra.tenant.legacy_authentication_blocked"}),
], ids=["role-assignments", "conditional-access"])
def test_a_listing_that_answers_403_is_an_error_for_its_checks_only(
        entra_fake: EntraFake, path: str, service: str, checks: set[str]) -> None:
    entra_fake.api.fail(rf"^/v1\.0/{path}", entra.forbidden)
    items = entra_fake.collect()
    errors = [i for i in items if isinstance(i, CollectionError)]
    assert [e.service for e in errors] == [service]
    assert "HTTP 403 Authorization_RequestDenied" in errors[0].message
    verdicts = _verdicts(items)
    for (check, _), (status, _) in verdicts.items():
        if check in checks:
            assert status == "error", check
    assert {c for (c, _), (s, _) in verdicts.items() if s == "fail"} >= {
        "entra.user.mfa_registered", "entra.application.secrets_not_expired"}


def test_a_malformed_answer_fails_its_listing_and_nothing_else(entra_fake: EntraFake) -> None:
    entra_fake.api.fail(r"^/v1\.0/servicePrincipals",
                        Response(b"<html>gateway</html>", content_type="text/html"))
    entra_fake.api.fail(r"^/v1\.0/applications", json_response({"value": [{"displayName": "x"}]}))
    items = entra_fake.collect()
    errors = {e.service: e.message for e in items if isinstance(e, CollectionError)}
    assert set(errors) == {"servicePrincipals", "applications"}
    assert "not JSON" in errors["servicePrincipals"]
    assert "has no id" in errors["applications"]
    verdicts = _verdicts(items)
    assert {s for (c, _), (s, _) in verdicts.items()
            if c.startswith(("entra.application.", "entra.service_principal."))} == {"error"}
    assert verdicts[("entra.tenant.mfa_required_for_all_users", TENANT_KEY)][0] == "pass"


def test_a_rejected_token_is_an_error_for_what_it_would_have_read(
        entra_fake: EntraFake) -> None:
    rejected = entra.graph_error(401, "InvalidAuthenticationToken",
                                 "Access token has expired or is not yet valid.")
    entra_fake.api.fail(r"^/v1\.0/users", rejected, times=1)
    assert not [i for i in entra_fake.collect() if isinstance(i, CollectionError)], (
        "a token refused once is asked for again and the call retried")

    entra_fake.api.fail(r"^/v1\.0/users", rejected)
    items = entra_fake.collect()
    errors = [i for i in items if isinstance(i, CollectionError)]
    assert [e.service for e in errors] == ["users"]
    assert "HTTP 401 InvalidAuthenticationToken" in errors[0].message
    verdicts = _verdicts(items)
    assert {s for (c, _), (s, _) in verdicts.items() if c.startswith("entra.user.")} == {
        "error"}
    assert verdicts[("entra.tenant.global_admins_between_2_and_4", TENANT_KEY)][0] == "pass"

    entra_fake.api.heal()
    entra_fake.api.fail(r"^/v1\.0/", rejected)
    items = entra_fake.collect()
    assert len([i for i in items if isinstance(i, CollectionError)]) == 8
    assert {s for s, _ in _verdicts(items).values()} == {"error"}


def test_the_tenant_in_the_file_decides_and_a_rejected_secret_stops_the_source(
        entra_fake: EntraFake, monkeypatch: pytest.MonkeyPatch) -> None:
    # The environment names another tenant: the token is still asked of the configured one.
    monkeypatch.setenv("AZURE_TENANT_ID", "99999999-9999-9999-9999-999999999999")
    assert not [i for i in entra_fake.collect() if isinstance(i, CollectionError)]
    assert entra_fake.api.calls["login.token"] == 1
    graph_calls = _graph_calls(entra_fake)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    with pytest.raises(SourceUnreachable, match=r"no token for tenant .*Invalid client secret"):
        entra_fake.collect()
    assert _graph_calls(entra_fake) == graph_calls, "nothing is asked of Graph without a token"


def _graph_calls(fake: EntraFake) -> int:
    return sum(n for name, n in fake.api.calls.items() if name.startswith("graph."))


def _tenant_verdict(fake: EntraFake, check: str) -> tuple[str, str]:
    return _verdicts(fake.collect())[(check, TENANT_KEY)]


MFA_ALL = "entra.tenant.mfa_required_for_all_users"
LEGACY = "entra.tenant.legacy_authentication_blocked"
GLOBAL_ADMINS = "entra.tenant.global_admins_between_2_and_4"


def test_security_defaults_require_mfa_and_block_legacy_authentication(
        entra_fake: EntraFake) -> None:
    entra_fake.tenant.conditional_access = []
    verdicts = _verdicts(entra_fake.collect())
    assert verdicts[(MFA_ALL, TENANT_KEY)][0] == "fail"
    assert verdicts[(LEGACY, TENANT_KEY)][0] == "fail"
    entra_fake.tenant.security_defaults["isEnabled"] = True
    verdicts = _verdicts(entra_fake.collect())
    assert verdicts[(MFA_ALL, TENANT_KEY)] == (
        "pass", "security defaults are on: they require MFA for every user")
    assert verdicts[(LEGACY, TENANT_KEY)][0] == "pass"


def test_a_conditional_access_policy_counts_only_when_it_covers_everyone(
        entra_fake: EntraFake) -> None:
    status, reason = _tenant_verdict(entra_fake, MFA_ALL)
    assert status == "pass" and "excluded: users 1" in reason, reason
    mfa = entra_fake.tenant.conditional_access[0]
    mfa["grantControls"]["builtInControls"] = ["mfa", "compliantDevice"]  # either one will do
    assert _tenant_verdict(entra_fake, MFA_ALL)[0] == "fail"
    mfa["grantControls"]["operator"] = "AND"
    assert _tenant_verdict(entra_fake, MFA_ALL)[0] == "pass"
    mfa["conditions"]["signInRiskLevels"] = ["high"]
    status, reason = _tenant_verdict(entra_fake, MFA_ALL)
    assert status == "fail" and "signInRiskLevels" in reason, reason
    mfa["conditions"]["signInRiskLevels"] = []
    mfa["state"] = "disabled"
    status, reason = _tenant_verdict(entra_fake, MFA_ALL)
    assert status == "fail" and "is disabled" in reason, reason

    block = entra_fake.tenant.conditional_access[1]
    block["state"] = "enabled"
    assert _tenant_verdict(entra_fake, LEGACY)[0] == "pass"
    block["conditions"]["clientAppTypes"] = ["exchangeActiveSync"]
    status, reason = _tenant_verdict(entra_fake, LEGACY)
    assert status == "fail" and "client apps ['exchangeActiveSync'] only" in reason, reason


def test_global_administrators_must_number_two_to_four(entra_fake: EntraFake) -> None:
    from collector.demo.emulators.entra_seed import assignment

    tenant = entra_fake.tenant
    assert _tenant_verdict(entra_fake, GLOBAL_ADMINS) == (
        "pass", "3 Global Administrators (active assignments)")
    others = [u["id"] for u in tenant.users[3:5]]
    tenant.role_assignments += [assignment(u, entra.GLOBAL_ADMINISTRATOR) for u in others]
    assert _tenant_verdict(entra_fake, GLOBAL_ADMINS)[0] == "fail"
    others = [a for a in tenant.role_assignments
              if a["roleDefinitionId"] != entra.GLOBAL_ADMINISTRATOR]
    tenant.role_assignments = [*others,
                               assignment(tenant.users[0]["id"], entra.GLOBAL_ADMINISTRATOR)]
    status, reason = _tenant_verdict(entra_fake, GLOBAL_ADMINS)
    assert status == "fail" and reason.startswith("1 Global Administrator"), reason


def test_the_authorization_policy_checks_fail_and_pass_with_its_settings(
        entra_fake: EntraFake) -> None:
    key = "entra:policy:authorizationPolicy"
    names = ("users_cannot_register_applications", "user_consent_restricted",
             "guest_access_restricted")
    verdicts = _verdicts(entra_fake.collect())
    assert [verdicts[(f"entra.authorization_policy.{n}", key)][0] for n in names] == [
        "fail", "pass", "pass"]
    policy = entra_fake.tenant.authorization_policy
    policy["defaultUserRolePermissions"]["allowedToCreateApps"] = False
    policy["defaultUserRolePermissions"]["permissionGrantPoliciesAssigned"] = [
        "ManagePermissionGrantsForSelf.microsoft-user-default-legacy"]
    policy["guestUserRoleId"] = "a0b1b346-4d3e-4e8b-98f8-753987be4970"
    verdicts = _verdicts(entra_fake.collect())
    assert [verdicts[(f"entra.authorization_policy.{n}", key)][0] for n in names] == [
        "pass", "fail", "fail"]


def test_the_demo_serves_its_tenant_with_what_it_planted(tmp_path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.entra import collect

    demo, source, items = demo_collected("collector.demo.emulators.entra", tmp_path,
                                         monkeypatch, collect)
    assert source.kind == "entra"
    assert_failures_are_planted(demo.planted, items, _entra_checks(), fail_only=SINGLE)


def test_every_graph_call_is_reported_to_the_observer(entra_fake: EntraFake) -> None:
    from connectors.entra import collect

    seen: list[tuple[str, str, int, int]] = []
    entra_fake.api.throttle_every(5, entra.throttled(retry_after=0))
    list(collect(entra_fake.settings(max_attempts=20), lambda *call: seen.append(call)))
    graph_calls = sum(n for name, n in entra_fake.api.calls.items() if name.startswith("graph."))
    assert {service for service, *_ in seen} == {"msgraph"}
    assert {operation for _, operation, *_ in seen} >= {
        "users.list", "userRegistrationDetails.list", "roleAssignments.list",
        "authorizationPolicy.get"}
    assert all(status == 200 for _, _, status, _ in seen)
    # Each call is reported once, its retries counted in it.
    assert len(seen) + sum(retries for *_, retries in seen) == graph_calls


def test_a_national_cloud_has_its_own_endpoints_unless_overridden(entra_fake: EntraFake) -> None:
    from connectors.entra import Settings

    tenant = entra_fake.tenant.id
    china = Settings(tenant_id=tenant, cloud="china")
    assert (china.login, china.graph_root) == ("https://login.chinacloudapi.cn",
                                               "https://microsoftgraph.chinacloudapi.cn")
    public = Settings(tenant_id=tenant.upper())
    assert (public.tenant_id, public.login, public.graph_root) == (
        tenant, "https://login.microsoftonline.com", "https://graph.microsoft.com")
    mine = entra_fake.settings(cloud="usgovernment")
    assert (mine.login, mine.graph_root) == (entra_fake.api.url, entra_fake.api.url)
