"""The github connector against the loopback GitHub fake: every listing read across small
pages in few calls, Enterprise Server's paths, rate limits and secondary limits that are waited
out and never taken for denials, tokens and GitHub App installation tokens (renewed after a
401), and refusals or malformed answers that become errors for the data they concern."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from pydantic import ValidationError

from collector.demo.emulators import github
from collector.demo.emulators.server import ca_file, json_response
from collector.model import FETCH_ERRORS, CollectionError, Resource
from connectors.github import CredentialsUnavailable, Settings, SourceUnreachable, collect
from connectors.github.api import LIMITS, SECONDARY_WAIT, GitHub, throttled
from connectors.http import HttpClient
from tests.github_support import ORG_KEY, GitHubFake, github_fake, github_server
from tests.helpers import by_key

__all__ = ["github_fake", "github_server"]

KINDS = {"github.organization", "github.repository", "github.member", "github.collaborator"}


def _repo_key(name: str) -> str:
    return f"github:repo:acme/{name}"


def test_the_organisation_is_read_in_few_calls_across_small_pages(
        github_fake: GitHubFake) -> None:
    items = github_fake.collect()
    assert not [i for i in items if isinstance(i, CollectionError)]
    resources = by_key(items)
    assert {i.kind for i in items if isinstance(i, Resource)} == KINDS
    assert set(resources) == {ORG_KEY, *(f"github:member:{m}" for m in github_fake.org.members),
                              *(_repo_key(r.name) for r in github_fake.org.repos),
                              "github:collaborator:auditor-y", "github:collaborator:contractor-x"}
    calls = github_fake.api.calls
    # Ten repositories in pages of three: four GraphQL answers and four REST pages, and one
    # protection asked of REST, where GraphQL was refused it.
    assert calls["graphql"] == 4 and calls["repos.listForOrg"] == 4
    assert calls["repos.getBranchProtection"] == 1
    assert github_fake.api.queries["repos.listForOrg"]["per_page"] == "100"

    org = resources[ORG_KEY]
    assert org["default_repository_permission"] == "write"
    assert org["actions_workflow_permissions"] == {"default_workflow_permissions": "write",
                                                   "can_approve_pull_request_reviews": False}
    assert "updated_at" not in org, "a date that changes by itself would version the org"
    assert resources["github:member:dana"]["two_factor_disabled"] is True
    assert resources["github:member:alice"]["role"] == "admin"
    assert resources["github:collaborator:contractor-x"]["repository_permissions"] == {
        "acme/infra": "ADMIN", "acme/web": "READ"}

    web = resources[_repo_key("web")]
    assert [r["type"] for r in web["default_branch_ref"]["rules"]["nodes"]] == [
        "PULL_REQUEST", "NON_FAST_FORWARD", "DELETION"]
    assert web["open_critical_dependabot_alerts"][0]["number"] == 2
    assert resources[_repo_key("api")]["open_critical_dependabot_alerts"] == [], (
        "a high alert and a fixed critical one are not open critical alerts")
    legacy = resources[_repo_key("legacy-billing")]
    assert legacy["branch_protection"] is None and FETCH_ERRORS not in legacy, (
        "404 Branch not protected is an answer: no protection")
    assert resources[_repo_key("empty-repo")]["default_branch_ref"] is None


def test_enterprise_server_is_called_under_api_v3_and_api_graphql(
        github_fake: GitHubFake) -> None:
    settings = github_fake.settings(api_url=f"{github_fake.api.url}/api/v3")
    assert settings.graphql_url == f"{github_fake.api.url}/api/graphql"
    items = list(collect(settings))
    assert not [i for i in items if isinstance(i, CollectionError)]
    assert len(by_key(items)) == 18
    assert github_fake.api.calls["(no route)"] == 0
    assert Settings(organization="acme").graphql_url == "https://api.github.com/graphql"


@pytest.mark.parametrize("storm", [
    pytest.param(lambda api: api.throttle_every(3, github.secondary_limit()), id="secondary-403"),
    pytest.param(lambda api: api.throttle_every(3, github.too_many()), id="429"),
    pytest.param(lambda api: api.fail(r"/orgs/acme/(repos|members)", github.primary_limit,
                                      times=3), id="primary-exhausted"),
    pytest.param(lambda api: api.throttle_every(3, github.graphql_rate_limited,
                                                pattern="graphql"), id="graphql-rate-limited"),
])
def test_rate_limits_are_waited_out_with_identical_results(github_fake: GitHubFake,
                                                           storm: Any) -> None:
    calm = by_key(github_fake.collect())
    storm(github_fake.api)
    stormy = github_fake.collect(max_attempts=8)
    assert not [i for i in stormy if isinstance(i, CollectionError)]
    assert by_key(stormy) == calm


def test_a_secondary_limit_that_names_no_time_waits_a_minute_and_a_denial_is_not_retried(
        github_fake: GitHubFake) -> None:
    answers = iter([github.error(403, "You have exceeded a secondary rate limit."),
                    github.error(403, "Resource not accessible by integration")])

    @github_fake.api.route("GET", "/limits-probe")
    def probe(request: Any) -> Any:
        return next(answers, {"ok": True})

    sleeps: list[float] = []
    client = HttpClient(github_fake.api.url, service="github", limits=LIMITS, sleep=sleeps.append,
                        settings=github_fake.settings(max_attempts=3))
    with pytest.raises(Exception, match="HTTP 403 : Resource not accessible by integration"):
        client.get_json("limits-probe", operation="probe")
    assert sleeps and sleeps[0] >= SECONDARY_WAIT
    assert github_fake.api.calls["probe"] == 2


def test_graphql_s_rate_limited_is_recognised_in_a_200_only() -> None:
    def answer(status: int, body: bytes) -> requests.Response:
        response = requests.Response()
        response.status_code, response._content = status, body
        return response

    limited = b'{"errors": [{"type": "RATE_LIMITED", "message": "API rate limit exceeded"}]}'
    assert throttled(answer(200, limited))
    assert not throttled(answer(200, b'{"data": {"name": "RATE_LIMITED"}}'))
    assert not throttled(answer(403, b'{"message": "Must have admin rights to Repository."}'))


def test_a_revoked_token_an_unset_one_and_an_organisation_it_cannot_see_stop_the_run(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    github_fake.tokens.revoke_all()
    with pytest.raises(SourceUnreachable, match=r"orgs\.get: HTTP 401 : Bad credentials"):
        github_fake.collect()

    monkeypatch.setenv("GITHUB_TOKEN", github.personal_token(github_fake.tokens, github_fake.org,
                                                             login="other-org"))
    with pytest.raises(SourceUnreachable, match=r"orgs\.get: HTTP 404 : Not Found"):
        github_fake.collect()

    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(CredentialsUnavailable, match="GITHUB_TOKEN is not set"):
        github_fake.collect()


def test_a_github_app_buys_an_installation_token_and_renews_it_after_a_401(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    items = github_fake.collect(**github_fake.app_options())
    assert len(by_key(items)) == 18
    assert github_fake.api.calls["apps.createInstallationAccessToken"] == 1

    client = GitHub(github_fake.settings(**github_fake.app_options()))
    assert client.rest.get_json("orgs/acme", operation="orgs.get")["login"] == "acme"
    github_fake.tokens.expire_all()  # the hour is up
    assert client.rest.get_json("orgs/acme", operation="orgs.get")["login"] == "acme"
    assert github_fake.api.calls["apps.createInstallationAccessToken"] == 3

    github_fake.apps[4242] = (github_fake.apps[4242][0], 999)  # installed elsewhere now
    with pytest.raises(SourceUnreachable, match=r"no installation token for app 4242, "
                                                r"installation 777: .* HTTP 404"):
        github_fake.collect(**github_fake.app_options())


def test_protection_404_is_no_protection_and_403_an_error_for_that_repository_only(
        github_fake: GitHubFake) -> None:
    github_fake.repo("legacy-billing").protection_forbidden = True
    resources = by_key(github_fake.collect())
    errors = resources[_repo_key("legacy-billing")][FETCH_ERRORS]
    assert list(errors) == ["branch_protection"]
    assert "HTTP 403 : Resource not accessible by integration" in errors["branch_protection"]
    assert FETCH_ERRORS not in resources[_repo_key("api")]


def test_a_token_without_administration_leaves_errors_on_what_it_cannot_read(
        github_fake: GitHubFake, monkeypatch: pytest.MonkeyPatch) -> None:
    scopes = {github.METADATA, github.MEMBERS, github.VULNERABILITY_ALERTS}
    monkeypatch.setenv("GITHUB_TOKEN", github.personal_token(github_fake.tokens, github_fake.org,
                                                             scopes))
    items = github_fake.collect()
    assert not [i for i in items if isinstance(i, CollectionError)]
    resources = by_key(items)
    org = resources[ORG_KEY]
    assert org["two_factor_requirement_enabled"] is None
    assert "actions_workflow_permissions" in org[FETCH_ERRORS]
    member = resources["github:member:alice"]
    assert list(member[FETCH_ERRORS]) == ["two_factor_disabled"] and member["role"] == "admin"
    assert "HTTP 422 : Only owners can use this filter" in member[FETCH_ERRORS][
        "two_factor_disabled"]
    api = resources[_repo_key("api")]
    assert api["security_and_analysis"] is None
    assert "HTTP 403" in api[FETCH_ERRORS]["branch_protection"]


def test_malformed_and_failed_listings_become_errors_for_their_kinds(
        github_fake: GitHubFake) -> None:
    github_fake.api.fail(r"/orgs/acme/repos", json_response({"repositories": []}))
    items = github_fake.collect()
    errors = [i for i in items if isinstance(i, CollectionError)]
    assert [(e.service, e.kinds) for e in errors] == [("repos", ("github.repository",))]
    assert "a page is a dict, not a list" in errors[0].message
    collaborator = by_key(items)["github:collaborator:contractor-x"]
    assert "the repositories could not all be listed" in collaborator[FETCH_ERRORS][
        "repository_permissions"]

    github_fake.api.heal()
    github_fake.api.fail(r"graphql", json_response({"data": {"organization": None}}))
    github_fake.api.fail(r"/dependabot/alerts", github.error(403, "Resource not accessible "
                                                                  "by integration"))
    items = github_fake.collect()
    assert not [i for i in items if isinstance(i, CollectionError)]
    web = by_key(items)[_repo_key("web")]
    assert "no organization.repositories in the answer" in web[FETCH_ERRORS]["default_branch_ref"]
    assert "HTTP 403" in web[FETCH_ERRORS]["open_critical_dependabot_alerts"]


def test_the_dependabot_alerts_page_by_cursor_and_many_collaborators_are_asked_of_rest(
        github_fake: GitHubFake) -> None:
    created = "2026-11-01T00:00:00Z"
    github_fake.org.alerts = [{"number": n, "repository": "web", "state": "open",
                               "severity": "critical", "package": f"pkg{n}",
                               "ghsa_id": f"GHSA-{n:04d}", "created_at": created}
                              for n in range(1, 12)]
    crowd = {f"guest-{n:02d}": "WRITE" for n in range(60)}
    github_fake.repo("mobile").collaborators = crowd
    resources = by_key(github_fake.collect())
    assert [a["number"] for a in resources[_repo_key("web")]
            ["open_critical_dependabot_alerts"]] == list(range(1, 12))
    assert github_fake.api.calls["dependabot.listAlertsForOrg"] == 4
    assert "after" in github_fake.api.queries["dependabot.listAlertsForOrg"]
    mobile = resources[_repo_key("mobile")]
    assert len(mobile["outside_collaborators"]) == 60 and FETCH_ERRORS not in mobile
    assert github_fake.api.calls["repos.listCollaborators"] == 20  # 60 in pages of three


@pytest.mark.parametrize(("options", "problem"), [
    ({"app_id": 1}, "a GitHub App needs app_id, private_key_file and installation_id: "
                    "private_key_file, installation_id missing"),
    ({"api_url": "http://ghe.example.com/api/v3"}, "is not an https:// URL"),
    ({"organization": "acme/evil"}, "String should match pattern"),
    ({"token_env": "GITHUB TOKEN"}, "String should match pattern"),
])
def test_bad_settings_name_the_field(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(**{"organization": "acme", "ca_bundle": str(ca_file()), **options})


def test_the_demo_serves_its_organisation_with_what_it_planted(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from collector.config import SourceConfig
    from collector.demo.emulators import DEMOS
    from tests.github_support import SINGLE
    from tests.helpers import assert_failures_are_planted

    module = importlib.import_module("collector.demo.emulators.github")
    assert module.__name__ in DEMOS
    demo = module.start_demo(tmp_path)
    try:
        for name, value in demo.env.items():
            monkeypatch.setenv(name, value)
        source = SourceConfig(**demo.source)
        items = list(collect(source.settings()))
    finally:
        demo.stop()
    assert source.kind == "github" and "GITHUB_TOKEN" not in demo.env
    assert_failures_are_planted(demo.planted, items, set(demo.planted), fail_only=SINGLE)


def test_every_call_is_reported_to_the_observer_once(github_fake: GitHubFake) -> None:
    seen: list[tuple[str, str, int, int]] = []
    github_fake.api.throttle_every(4, github.too_many())
    list(collect(github_fake.settings(), lambda *call: seen.append(call)))
    assert {service for service, *_ in seen} == {"github"}
    assert {operation for _, operation, *_ in seen} >= {
        "orgs.get", "orgs.listMembers", "repos.listForOrg", "graphql.repositories",
        "dependabot.listAlertsForOrg", "repos.getBranchProtection"}
    # The one refusal is legacy-billing's "Branch not protected"; throttling was retried.
    assert {(operation, status) for _, operation, status, _ in seen if status != 200} == {
        ("repos.getBranchProtection", 404)}
    assert len(seen) + sum(retries for *_, retries in seen) == github_fake.api.total_calls


def test_a_spent_window_is_waited_out_before_the_next_call_not_run_into(
        github_fake: GitHubFake) -> None:
    window = github.Window(limit=2, seconds=1)
    api, tokens, _ = github.start(github_fake.org, window=window)
    try:
        seen: list[tuple[str, str, int, int]] = []
        token = github.personal_token(tokens, github_fake.org)
        client = HttpClient(api.url, service="github", limits=LIMITS,
                            settings=github_fake.settings(), observer=lambda *c: seen.append(c),
                            headers={"Authorization": f"Bearer {token}"})
        for _ in range(3):
            assert client.get_json("orgs/acme", operation="orgs.get")["login"] == "acme"
    finally:
        api.stop()
    # The second call says X-RateLimit-Remaining 0: the client waits for the window's reset
    # before the third, so no call is refused and none is retried.
    assert [(status, retries) for *_, status, retries in seen] == [(200, 0)] * 3
    assert api.calls["orgs.get"] == 3


def test_rules_or_bypass_actors_beyond_one_page_are_not_judged_as_if_complete(
        github_fake: GitHubFake) -> None:
    from checks.registry import load_all
    from collector.evaluate import evaluate_all

    web, payments = github_fake.org.rulesets[0], github.Ruleset(7100, "crowded")
    web.bypass = [{**web.bypass[0], "actor": {"__typename": "Team", "slug": f"team-{n}",
                                              "name": f"Team {n}"}} for n in range(11)]
    payments.repositories = {"payments"}
    payments.rules = [("REQUIRED_SIGNATURES", None)] * 21
    github_fake.org.rulesets.append(payments)
    items = github_fake.collect()
    assert "more than 20 ruleset rules" in by_key(items)[_repo_key("payments")][FETCH_ERRORS][
        "default_branch_ref"]
    load_all()
    verdicts = {(o.check.id, o.subject): o.verdict for o in evaluate_all(items)}
    review = "github.repository.default_branch_requires_approving_review"
    assert verdicts[(review, _repo_key("payments"))].status == "error"
    assert verdicts[(review, _repo_key("web"))].status == "error"
    assert "more bypass actors than were read" in verdicts[(review, _repo_key("web"))].reason
