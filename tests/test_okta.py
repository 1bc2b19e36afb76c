"""The Okta connector against the loopback Okta fake (SSWS and private_key_jwt bearer auth,
Link paging over small pages, rate-limit headers): every planted gap is found on exactly its
resources, rate limits are paced before a 429 comes and a 429 waits for the reset, and what is
refused, revoked or malformed is an error, never a pass."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest

from checks.registry import load_all
from collector.demo.emulators import okta
from collector.demo.emulators.server import json_response
from collector.evaluate import evaluate_all
from collector.model import CollectionError, Resource, Scope
from connectors.okta import SourceUnreachable
from connectors.okta.listings import POLICY_TYPES
from tests.helpers import assert_failures_are_planted, demo_collected
from tests.okta_support import SINGLE, OktaFake, by_key, evidence, okta_fake, okta_server

__all__ = ["okta_fake", "okta_server"]


def _okta_checks() -> set[str]:
    return {c for c in load_all() if c.startswith("okta.")}


def _errors(items: list[Any]) -> list[CollectionError]:
    return [i for i in items if isinstance(i, CollectionError)]


def test_each_check_fails_exactly_on_the_planted_resources(okta_fake: OktaFake) -> None:
    items = okta_fake.collect()
    assert isinstance(items[0], Scope) and items[0].key == "okta:org:127.0.0.1"
    assert len(_okta_checks()) >= 10
    assert_failures_are_planted(okta_fake.planted, items, _okta_checks(), fail_only=SINGLE)
    keys = by_key(items)
    assert {k.split(":")[1] for k in keys} == {
        "user", "role_assignment", "policy", "authenticator", "app", "api_token", "zone"}
    users = {k: u for k, u in keys.items() if k.startswith("okta:user:")}
    # Deprovisioned users too, which /api/v1/users leaves out unless a filter asks.
    assert len(users) == len(okta_fake.org.users)
    leaver = users[f"okta:user:{okta_fake.user('frank.leaver')['id']}"]
    assert leaver["status"] == "DEPROVISIONED" and leaver["factors"] is None
    for user in users.values():
        assert {"status", "lastLogin", "activated", "adminRoles", "factors"} <= set(user)
        assert "_errors" not in user and "_links" not in user and "credentials" not in user
    admin = users[f"okta:user:{okta_fake.user('alice.admin')['id']}"]
    assert admin["adminRoles"] == ["SUPER_ADMIN"]
    policies = [p for k, p in keys.items() if k.startswith("okta:policy:")]
    assert len(policies) == 9 and all(p["rules"] for p in policies)


def test_small_pages_are_all_read_with_the_fewest_calls(okta_fake: OktaFake) -> None:
    okta_fake.api.page_size = 2
    counted = by_key(okta_fake.collect())
    org, calls = okta_fake.org, okta_fake.api.calls
    assert sum(k.startswith("okta:user:") for k in counted) == len(org.users)
    listed = [u for u in org.users if u["status"] != "DEPROVISIONED"]
    assert calls["users"] == math.ceil(len(listed) / 2) + 1
    # Factors are the one call per user, and not asked of deprovisioned users.
    assert calls["users.factors"] == len(listed)
    # Roles: the admins in pages, then each admin's roles; not a call per user.
    assert calls["iam.assignees"] == math.ceil(len(org.roles) / 2)
    assert calls["users.roles"] == len(org.roles)
    assert calls["policies"] == 4 + sum(len(p) > 2 for p in org.policies.values())
    assert calls["policies.rules"] == sum(len(p) for p in org.policies.values()) + sum(
        len(r) > 2 for r in org.rules.values())
    assert calls["authenticators"] == math.ceil(len(org.authenticators) / 2)
    assert okta_fake.api.queries["users"] == {"limit": "200",
                                              "filter": 'status eq "DEPROVISIONED"'}


def test_rate_limits_are_paced_before_a_429_comes(okta_fake: OktaFake) -> None:
    calm = evidence(okta_fake.collect(workers=1))
    okta_fake.limiter.clear()
    # Eight calls a second per bucket: the factors and the rules run past it.
    okta_fake.org.rate_limit = 8
    started = time.monotonic()
    paced = okta_fake.collect(workers=1)
    assert not _errors(paced)
    assert evidence(paced) == calm
    assert okta_fake.limiter.refused == 0, "the client ran into a 429 instead of pacing"
    assert time.monotonic() - started < 60


def test_a_429_storm_waits_for_the_reset_and_changes_nothing(okta_fake: OktaFake) -> None:
    calm = evidence(okta_fake.collect())
    observed: list[tuple[str, str, int, int]] = []
    okta_fake.api.throttle_every(7, okta.rate_limited(window=1.0))
    stormy = okta_fake.collect(observed)
    assert not _errors(stormy)
    assert evidence(stormy) == calm
    assert sum(retries for *_, retries in observed) >= 3


def test_a_429_that_asks_for_too_long_a_wait_fails_its_listing_alone(
        okta_fake: OktaFake) -> None:
    later = str(int(time.time()) + 3600)
    okta_fake.api.fail(r"^/api/v1/zones", json_response(
        {"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too "
         "many requests."}, 429, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": later}))
    items = okta_fake.collect(max_retry_wait=5)
    [error] = _errors(items)
    assert error.kinds == ("okta.zone",) and "max_retry_wait" in error.message
    assert "E0000047" in error.message
    assert sum(k.startswith("okta:user:") for k in by_key(items)) == len(okta_fake.org.users)


def test_a_revoked_token_stops_the_source_naming_okta_s_error(okta_fake: OktaFake) -> None:
    okta_fake.org.secrets.clear()
    with pytest.raises(SourceUnreachable, match="HTTP 401 E0000011: Invalid token provided"):
        okta_fake.collect()


def test_a_missing_token_is_named(okta_fake: OktaFake,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(okta.TOKEN_ENV)
    with pytest.raises(SourceUnreachable, match="OKTA_API_TOKEN is not set"):
        okta_fake.collect()


def test_a_denied_or_malformed_listing_is_an_error_for_its_kind_alone(
        okta_fake: OktaFake) -> None:
    okta_fake.api.fail(r"^/api/v1/api-tokens", okta.forbidden)
    okta_fake.api.fail(r"^/api/v1/apps", json_response({"not": "a list"}))
    okta_fake.api.fail(r"^/api/v1/users/[^/]+/factors", okta.forbidden, times=1)
    items = okta_fake.collect()
    errors = {e.kinds: e.message for e in _errors(items)}
    assert set(errors) == {("okta.api_token",), ("okta.app",)}
    assert "HTTP 403 E0000006" in errors[("okta.api_token",)]
    assert "MalformedResponse" in errors[("okta.app",)]
    users = [i.data for i in items if isinstance(i, Resource) and i.kind == "okta.user"]
    [refused] = [u for u in users if "_errors" in u]
    assert "E0000006" in refused["_errors"]["factors"]
    load_all()
    verdicts = {(o.check.id, o.subject): o.verdict.status for o in evaluate_all(items)}
    assert verdicts[("okta.user.mfa_enrolled", f"okta:user:{refused['id']}")] == "error"


def test_a_service_app_signs_in_with_private_key_jwt(okta_fake: OktaFake, tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    with_token = evidence(okta_fake.collect())
    okta_fake.api.reset_calls()
    assert evidence(okta_fake.collect(**okta_fake.service_app())) == with_token
    assert okta_fake.api.calls["oauth2.token"] == 1
    # A P-256 key signs ES256.
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "ec.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    app = okta_fake.org.service_apps[okta_fake.service_app()["client_id"]]
    app.public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert evidence(okta_fake.collect(**okta_fake.service_app(private_key_file=str(pem)))) == (
        with_token)


def test_a_service_app_without_a_scope_loses_that_listing_alone(okta_fake: OktaFake) -> None:
    from connectors.okta.settings import DEFAULT_SCOPES

    scopes = [s for s in DEFAULT_SCOPES if s != okta.API_TOKENS]
    items = okta_fake.collect(**okta_fake.service_app(scopes=scopes))
    [error] = _errors(items)
    assert error.kinds == ("okta.api_token",) and "E0000006" in error.message


@pytest.mark.parametrize(("change", "words"), [
    ("dpop", "invalid_dpop_proof"), ("scope", "invalid_scope"), ("key", "invalid_client")])
def test_a_refused_service_app_names_why(okta_fake: OktaFake, change: str, words: str) -> None:
    app = okta_fake.org.service_apps[okta_fake.service_app()["client_id"]]
    if change == "dpop":
        app.dpop = True
    elif change == "scope":
        app.scopes.discard(okta.ZONES)
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        app.public_key = rsa.generate_private_key(65537, 2048).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SourceUnreachable, match=words):
        okta_fake.collect(**okta_fake.service_app())


@pytest.mark.parametrize(("options", "problem"), [
    ({"org_url": "http://acme.okta.com"}, "is not an Okta org URL"),
    ({"org_url": "https://acme.okta.com/api/v1"}, "is not an Okta org URL"),
    ({"client_id": "0oa1"}, "needs both client_id and private_key_file"),
    ({"token_env": "OKTA TOKEN"}, "is not an environment variable name"),
])
def test_a_bad_setting_is_named(okta_fake: OktaFake, options: dict[str, Any],
                                problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        okta_fake.settings(**options)


SCOPES = json.loads((Path(__file__).parent.parent / "config" / "okta" /
                     "oauth-scopes.json").read_text())["scopes"]
# The listings each scope admits (a user's factors come with the users' scope).
NEEDED_BY = {
    okta.USERS: {"users"}, okta.ROLES: {"iam.assignees"},
    okta.POLICIES: {f"policies:{t}" for t in POLICY_TYPES},
    okta.AUTHENTICATORS: {"authenticators"}, okta.APPS: {"apps"},
    okta.API_TOKENS: {"api-tokens"}, okta.ZONES: {"zones"},
}


def test_the_shipped_scopes_are_what_the_connector_asks_for_and_each_says_why() -> None:
    from connectors.okta.settings import DEFAULT_SCOPES

    assert [s["name"] for s in SCOPES] == list(DEFAULT_SCOPES) == list(NEEDED_BY)
    assert all(s["calls"] and s["why"] for s in SCOPES)


@pytest.mark.parametrize("dropped", list(NEEDED_BY))
def test_each_scope_is_needed(okta_fake: OktaFake, dropped: str) -> None:
    scopes = [s["name"] for s in SCOPES if s["name"] != dropped]
    items = okta_fake.collect(**okta_fake.service_app(scopes=scopes))
    errors = _errors(items)
    assert all("HTTP 403 E0000006" in e.message for e in errors), errors
    assert {e.service for e in errors} == NEEDED_BY[dropped]


def test_the_demo_serves_its_org_with_what_it_planted(tmp_path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.okta import collect

    demo, source, items = demo_collected("collector.demo.emulators.okta", tmp_path,
                                         monkeypatch, collect)
    assert source.kind == "okta"
    assert_failures_are_planted(demo.planted, items, _okta_checks(), fail_only=SINGLE)


def test_okta_users_read_as_people_s_own_records(okta_fake: OktaFake) -> None:
    from collector.people.adapters.okta import okta_user

    users = {i.data["profile"]["login"].split("@")[0]: i for i in okta_fake.collect()
             if isinstance(i, Resource) and i.kind == "okta.user"}
    [alice] = okta_user(users["alice.admin"].key, users["alice.admin"].data)
    assert alice.active and alice.privileged and alice.privileges == ("SUPER_ADMIN",)
    assert alice.mfa is True and alice.person is not None and alice.person.status == "active"
    assert "email:alice.admin@acme.example" in alice.identifiers
    [carol] = okta_user(users["carol.nomfa"].key, users["carol.nomfa"].data)
    assert carol.mfa is False and not carol.privileged
    [frank] = okta_user(users["frank.leaver"].key, users["frank.leaver"].data)
    assert not frank.active and frank.mfa is None and frank.person is not None
    assert frank.person.gone
