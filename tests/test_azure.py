"""The Azure connector against the loopback emulator, with the real azure-identity token flow
(DefaultAzureCredential's EnvironmentCredential): every planted gap is found on exactly its
resources, paging and throttling change nothing, and data that could not be read is an
`error` for the checks that needed it, never a pass."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Response

from checks.registry import REGISTRY, load_all
from collector.canonical import canonical
from collector.demo.emulators import azure as emulator
from collector.demo.emulators.azure_sample import DEV, PROD, storage_account
from collector.demo.emulators.server import ca_file, json_response
from collector.evaluate import Outcome, evaluate_all
from collector.model import ALL_REGIONS, Scope
from connectors.azure import SourceUnreachable
from connectors.azure.kinds import ALL_KINDS, KINDS
from tests.azure_support import Tenant, azure_server, errors, resources, tenant
from tests.helpers import assert_failures_are_planted

__all__ = ["azure_server", "tenant"]

GRAPH = r"(?i)/providers/Microsoft\.ResourceGraph/resources"


def _azure_checks() -> set[str]:
    load_all()
    return {c for c in REGISTRY if c.startswith("azure.")}


def _evidence(items: list[Any]) -> dict[str, bytes]:
    return {key: canonical(r.data) for key, r in resources(items).items()}


def _verdicts(items: list[Any]) -> dict[tuple[str, str], str]:
    load_all()
    return {(o.check.id, o.subject): o.verdict.status for o in evaluate_all(items)
            if o.check.id.startswith("azure.")}


def _outcomes(items: list[Any], check_id: str) -> list[Outcome]:
    load_all()
    return [o for o in evaluate_all(items) if o.check.id == check_id]


def test_each_check_fails_exactly_on_the_planted_resources(tenant: Tenant) -> None:
    items = tenant.collect()
    checks = _azure_checks()
    assert len(checks) >= 20
    assert set(tenant.planted) <= checks, set(tenant.planted) - checks
    assert set(tenant.planted) == checks, "every check has a planted gap"
    assert_failures_are_planted(tenant.planted, items, checks)
    scopes = [i for i in items if isinstance(i, Scope)]
    assert scopes == [Scope("azure", f"/subscriptions/{s}", f"/subscriptions/{s}", ALL_KINDS)
                      for s in (PROD, DEV)], "each lists every kind in full"
    assert items[:2] == scopes, "the scopes come before their resources"
    keys = resources(items)
    assert all(k.startswith("/subscriptions/") for k in keys)
    # Keys are the ARM ids as Resource Graph returns them, casing included.
    assert (f"/subscriptions/{PROD}/resourceGroups/data/providers/Microsoft.Storage/"
            f"storageAccounts/acmeprodlogs") in keys


def test_requests_are_resource_graph_pages_and_one_per_child_read(tenant: Tenant) -> None:
    tenant.api.page_size = 1000
    items = tenant.collect()
    calls = tenant.api.calls
    assert calls["resourcegraph.query"] == 2, "one page per table"
    children = sum(len(kind.children) for kind in KINDS)
    assert children
    by_kind = Counter(r.kind for r in resources(items).values())
    expected = 3 * by_kind["azure.subscription"] + sum(
        sum(1 for child in kind.children if child.applies(r.data))
        for kind in KINDS for r in resources(items).values() if r.kind == kind.kind)
    assert calls["arm.get"] == expected
    assert calls["subscriptions.list"] == 1
    assert calls["login.token"] == 1, "one token for the whole run"
    assert set(calls) == {"resourcegraph.query", "arm.get", "subscriptions.list",
                          "login.token", "login.openid"}, calls


def test_paging_across_many_small_pages_gives_the_same_evidence(tenant: Tenant) -> None:
    tenant.api.page_size = 1000
    whole = _evidence(tenant.collect())
    tenant.api.reset_calls()
    tenant.api.page_size = 2
    paged = tenant.collect()
    assert _evidence(paged) == whole
    rows = sum(len(t) for t in tenant.state.tables.values())
    assert tenant.api.calls["resourcegraph.query"] >= rows // 2
    assert tenant.api.calls["subscriptions.list"] == 1  # two subscriptions, one page of 2


def test_throttling_storms_and_server_errors_change_nothing(tenant: Tenant) -> None:
    clean = tenant.collect()
    calm = tenant.api.total_calls
    tenant.api.reset_calls()
    tenant.api.throttle_every(3, emulator.throttled)
    tenant.api.fail(r"(?i)/blobServices/default", json_response(
        {"error": {"code": "InternalServerError", "message": "Encountered internal server "
                   "error."}}, 500), times=3)
    tenant.api.fail(GRAPH, json_response({"error": {"code": "ServiceUnavailable",
                                                   "message": "try later"}}, 503), times=2)
    stormy = tenant.collect()
    assert tenant.api.total_calls >= calm * 1.4, "a third of the calls were refused"
    assert _evidence(stormy) == _evidence(clean)
    assert _verdicts(stormy) == _verdicts(clean)
    assert not errors(stormy)
    assert not [r for r in resources(stormy).values() if "_errors" in r.data]


def test_a_subscription_that_answers_403_is_an_error_for_its_kinds_only(tenant: Tenant
                                                                         ) -> None:
    tenant.state.denied.add(DEV)
    items = tenant.collect(subscriptions=[PROD, DEV])
    scopes = [i.id for i in items if isinstance(i, Scope)]
    assert scopes == [f"/subscriptions/{PROD}", f"/subscriptions/{DEV}"]
    [denied] = errors(items)
    assert denied.scope == f"/subscriptions/{DEV}" and denied.region == ALL_REGIONS
    assert set(denied.kinds) == set(ALL_KINDS)
    assert "HTTP 403 AuthorizationFailed" in denied.message
    assert not [r for r in resources(items).values()
                if r.scope == f"/subscriptions/{DEV}"]
    verdicts = _verdicts(items)
    dev_results = {status for (check, subject), status in verdicts.items()
                   if subject.startswith(f"/subscriptions/{DEV}")}
    assert dev_results == {"error"}
    prod = {k: v for k, v in verdicts.items() if k[1].startswith(f"/subscriptions/{PROD}")}
    assert "error" not in prod.values() and "pass" in prod.values()


def test_a_subscription_that_does_not_exist_is_named(tenant: Tenant) -> None:
    missing = "33333333-3333-3333-3333-333333333333"
    [error] = errors(tenant.collect(subscriptions=[PROD, missing]))
    assert error.scope == f"/subscriptions/{missing}"
    assert f"SubscriptionNotFound: The subscription '{missing}' could not be found" in \
        error.message


def test_a_malformed_resource_graph_page_is_an_error_for_that_table(tenant: Tenant) -> None:
    # The first query (the Resources table's) is answered by a gateway's HTML page, once.
    tenant.api.fail(GRAPH, Response(b"<html>Bad gateway</html>", content_type="text/html"),
                    times=1)
    items = tenant.collect()
    failed = errors(items)
    assert {e.scope for e in failed} == {f"/subscriptions/{PROD}", f"/subscriptions/{DEV}"}
    resources_kinds = {k.kind for k in KINDS if k.table == "Resources"}
    assert all(set(e.kinds) == resources_kinds for e in failed)
    assert all("the answer is not JSON (text/html" in e.message for e in failed)
    # The subscriptions and the other table are collected all the same.
    kinds = Counter(r.kind for r in resources(items).values())
    assert kinds == {"azure.subscription": 2, "azure.authorization.role_assignment": 7}
    verdicts = _verdicts(items)
    on_resources = {status for (check, _), status in verdicts.items()
                    if REGISTRY[check].resource_kind in resources_kinds}
    assert on_resources == {"error"}
    assert verdicts[("azure.monitor.activity_log_exported", f"/subscriptions/{PROD}")] == \
        "pass"
    assert verdicts[("azure.authorization.subscription_owners_at_most_three",
                     f"/subscriptions/{DEV}")] == "fail"


def test_a_malformed_child_answer_is_an_error_for_the_checks_that_need_it(tenant: Tenant
                                                                          ) -> None:
    account = next(k for k in tenant.state.answers if k.endswith("acmeprodlogs/blobservices/"
                                                                  "default"))
    tenant.api.fail("(?i)" + account.replace(".", r"\."),
                    Response(b"{not json", content_type="application/json"))
    items = tenant.collect()
    logs = next(r for r in resources(items).values() if r.key.endswith("/acmeprodlogs"))
    assert "blob_service" in logs.data["_errors"]
    outcomes = {o.check.id: o.verdict for o in evaluate_all(items) if o.subject == logs.key}
    assert outcomes["azure.storage.account_blob_soft_delete_enabled"].status == "error"
    assert "blob_service could not be collected" in \
        outcomes["azure.storage.account_blob_soft_delete_enabled"].reason
    assert {v.status for c, v in outcomes.items()
            if c != "azure.storage.account_blob_soft_delete_enabled"} == {"pass"}


def test_a_missing_field_is_an_error_never_a_pass(tenant: Tenant) -> None:
    account = storage_account(tenant.state, PROD, "acmeprodbare")
    del tenant.state.row(account)["properties"]["supportsHttpsTrafficOnly"]
    vault = next(k for k, r in tenant.state.tables["resources"].items()
                 if r["name"] == "acme-prod-kv")
    del tenant.state.tables["resources"][vault]["properties"]
    items = tenant.collect()
    [https] = [o for o in _outcomes(items, "azure.storage.account_https_only")
               if o.subject == account]
    assert https.verdict.status == "error"
    assert "properties.supportsHttpsTrafficOnly is not in the collected data" in \
        https.verdict.reason
    network = [o for o in _outcomes(items, "azure.keyvault.vault_default_network_access_denied")
               if o.subject.endswith("/acme-prod-kv")]
    assert network[0].verdict.status == "fail"  # no network ACLs at all: every network


def test_a_defender_read_refused_is_an_error_for_the_defender_checks(tenant: Tenant) -> None:
    # Reader without Security Reader: the pricings answer 403, the rest is readable.
    tenant.api.fail(r"(?i)/providers/Microsoft\.Security/pricings", emulator.forbidden(
        emulator.DEMO_CLIENT_ID, "Microsoft.Security/pricings/read", f"/subscriptions/{PROD}"))
    items = tenant.collect()
    verdicts = _verdicts(items)
    for plan in ("servers", "storage", "sql", "keyvault"):
        assert verdicts[(f"azure.defender.{plan}_plan_standard",
                         f"/subscriptions/{PROD}")] == "error"
    assert verdicts[("azure.monitor.activity_log_exported", f"/subscriptions/{PROD}")] == \
        "pass"
    assert not errors(items)


def test_a_rejected_token_mid_run_is_an_error_for_what_it_would_have_read(tenant: Tenant
                                                                           ) -> None:
    tenant.api.fail(GRAPH, emulator.arm_error(
        401, "ExpiredAuthenticationToken",
        "The access token expiry UTC time is earlier than current UTC time."))
    items = tenant.collect()
    failed = errors(items)
    assert failed and all("HTTP 401 ExpiredAuthenticationToken" in e.message for e in failed)
    assert tenant.api.calls["login.token"] == 1, "the credential's token was asked once more"
    kinds = Counter(r.kind for r in resources(items).values())
    assert kinds == {"azure.subscription": 2}
    verdicts = _verdicts(items)
    assert verdicts[("azure.authorization.subscription_owners_at_most_three",
                     f"/subscriptions/{PROD}")] == "error"
    assert verdicts[("azure.monitor.activity_log_exported", f"/subscriptions/{PROD}")] == \
        "pass"


def test_a_rejected_secret_makes_the_source_unreachable(tenant: Tenant,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    with pytest.raises(SourceUnreachable, match=r"HTTP 401 CredentialUnavailable: .*"
                                                r"Invalid client secret"):
        tenant.collect()
    assert not tenant.api.calls["subscriptions.list"]


def test_the_tenant_in_the_file_decides_over_the_environment(tenant: Tenant,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    other = "99999999-9999-9999-9999-999999999999"
    tenant.state.directory.register(other, emulator.DEMO_CLIENT_ID, "other-secret")
    monkeypatch.setenv("AZURE_TENANT_ID", other)
    assert not errors(tenant.collect())  # the token came from the file's tenant
    with pytest.raises(SourceUnreachable, match="Invalid client secret"):
        tenant.collect(tenant_id=other)


def test_the_sources_ca_bundle_is_trusted_even_when_the_environment_names_another(
        tenant: Tenant, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    other.write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    # Both the token calls and the ARM calls trust the source's bundle: requests would let
    # REQUESTS_CA_BUNDLE replace a verify=True (tests/test_http_client.py shows it does).
    assert not errors(tenant.collect())
    assert tenant.api.calls["login.token"] == 1


def test_resource_graph_types_match_case_insensitively_only_with_tilde(tenant: Tenant
                                                                       ) -> None:
    from azure.identity import ClientSecretCredential

    token = ClientSecretCredential(
        emulator.DEMO_TENANT, emulator.DEMO_CLIENT_ID, emulator.DEMO_CLIENT_SECRET,
        authority=tenant.api.url, disable_instance_discovery=True,
        connection_verify=str(ca_file())).get_token(f"{emulator.ARM_AUDIENCE}/.default")

    def count(query: str) -> int:
        answer = requests.post(
            f"{tenant.api.url}/providers/Microsoft.ResourceGraph/resources",
            params={"api-version": "2022-10-01"}, verify=str(ca_file()), timeout=10,
            headers={"Authorization": f"Bearer {token.token}"},
            json={"subscriptions": [PROD], "query": query, "options": {"$top": 1000}})
        answer.raise_for_status()
        return int(answer.json()["totalRecords"])

    mixed = "'Microsoft.KeyVault/vaults'"
    assert count(f"Resources | where type in~ ({mixed})") == 3
    assert count(f"Resources | where type =~ {mixed}") == 3
    assert count(f"Resources | where type in ({mixed})") == 0
    assert count("Resources | where type == 'microsoft.keyvault/vaults'") == 3


def test_an_exhausted_resource_graph_quota_is_waited_for_as_its_headers_say(tenant: Tenant
                                                                            ) -> None:
    tenant.state.quota, tenant.state.window = 0, 5.0
    # A wait longer than max_retry_wait fails the call at once, naming the wait it was asked
    # for: the quota's reset, read from x-ms-user-quota-resets-after (hh:mm:ss).
    failed = errors(tenant.collect(max_retry_wait=1))
    assert {e.service for e in failed} == {"resourcegraph"}
    assert all(re.search(r"HTTP 429 RateLimiting: .*asks to wait [45]s, more than "
                         r"max_retry_wait 1s", e.message) for e in failed), failed


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("tenant_id", "not a tenant", "neither a tenant id"),
    ("subscriptions", ["11111111"], "is not a subscription id"),
    ("subscriptions", [PROD, PROD.upper()], "is listed twice"),
    ("subscriptions", [], "at least 1 item"),
    ("cloud", "mars", "'public', 'china' or 'usgovernment'"),
    ("authority_host", "http://login.example", "is not an https:// URL"),
    ("resource_manager", "https://arm.example/?x=1", "has a query or fragment"),
    ("subscription", [PROD], "Extra inputs are not permitted"),
], ids=["tenant", "subscription-id", "duplicate", "empty", "cloud", "http", "query", "typo"])
def test_a_bad_config_names_the_field(tmp_path, tenant: Tenant, field: str, value: Any,
                                      problem: str) -> None:
    from collector.config import ConfigError, load

    config = tenant.write_config(tmp_path, "sqlite:///x.db", **{field: value})
    with pytest.raises(ConfigError) as raised:
        load(str(config))
    assert f"sources[0].{field}" in str(raised.value)
    assert problem in str(raised.value)


def test_the_cloud_decides_the_endpoints_and_the_token_audience(tenant: Tenant) -> None:
    china = tenant.settings(cloud="china", authority_host=None, resource_manager=None)
    assert china.endpoints.authority_host == "https://login.chinacloudapi.cn"
    assert china.endpoints.resource_manager == "https://management.chinacloudapi.cn"
    overridden = tenant.settings(cloud="usgovernment")
    assert overridden.endpoints.resource_manager == tenant.api.url
    assert overridden.endpoints.audience == "https://management.usgovcloudapi.net"
    # The emulator issues tokens for the audience asked for: an ARM call with a US Government
    # token is refused as ARM refuses a token for another audience.
    with pytest.raises(SourceUnreachable, match="InvalidAuthenticationTokenAudience"):
        tenant.collect(cloud="usgovernment")


def test_the_checks_read_rules_in_priority_order_and_plans_by_their_current_entry() -> None:
    from checks.azure import defender, network
    from collector.demo.emulators.azure_sample import nsg_rule

    def group(*rules: dict[str, Any]) -> dict[str, Any]:
        return {"properties": {"securityRules": list(rules)}}

    ssh = network.nsg_ssh_closed_to_internet
    assert ssh(group(nsg_rule("deny", 100, "22", "Internet", access="Deny"),
                     nsg_rule("allow", 200, "22", "*"))).status == "pass"
    assert ssh(group(nsg_rule("deny-office", 100, "22", "203.0.113.7", access="Deny"),
                     nsg_rule("allow", 200, "20-30", ["::/0"]))).status == "fail"
    assert ssh(group(nsg_rule("udp", 100, "22", "*", protocol="Udp"))).status == "pass"
    assert ssh(group(nsg_rule("out", 100, "22", "*", direction="Outbound"))).status == "pass"
    assert ssh(group(nsg_rule("tag", 100, "22", "AzureLoadBalancer"))).status == "pass"
    every = network.nsg_all_ports_closed_to_internet
    # A TCP deny leaves UDP open on every port.
    assert every(group(nsg_rule("deny-tcp", 100, "*", "*", access="Deny"),
                       nsg_rule("allow", 200, "0-65535", "Any", protocol="*"))).status == "fail"
    assert every(group(nsg_rule("web", 100, "443", "*"))).status == "pass"
    assert every({"properties": {}}).status == "error"

    def pricing(name: str, tier: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "properties": {"pricingTier": tier, **extra}}

    servers = defender.servers_plan_standard
    assert servers({"defender_pricings": [
        pricing("VirtualMachines", "Standard", subPlan="P2"),
        pricing("Dns", "Free", deprecated=True, replacedBy=["VirtualMachines"])]}
    ).status == "pass"
    retired = {"defender_pricings": [
        pricing("VirtualMachines", "Free", deprecated=True, replacedBy=["Servers2"]),
        pricing("Servers2", "Standard")]}
    assert servers(retired).status == "pass"
    assert "Servers2 Standard" in servers(retired).reason
    assert servers({"defender_pricings": []}).status == "fail"


def test_the_demo_starts_with_its_planted_gaps(tmp_path) -> None:
    demo = emulator.start_demo(tmp_path)
    try:
        assert demo.source["kind"] == "azure" and demo.source["tenant_id"] == \
            emulator.DEMO_TENANT
        assert demo.env == emulator.credentials_env()
        assert set(demo.planted) == _azure_checks()
        assert json.dumps(demo.source)  # plain data, ready for a config file
    finally:
        demo.stop()
