"""The demo's GitHub organisation: repositories, members and outside collaborators with
planted gaps beside well-configured twins, and which check fails on which key because of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from collector.demo.emulators.github import Org, Repo, Ruleset, protection_rule

ORG = "acme"
REVIEW = "github.repository.default_branch_requires_approving_review"
FORCE_PUSH = "github.repository.default_branch_blocks_force_pushes"
ADMINS = "github.repository.default_branch_protection_binds_admins"
DELETION = "github.repository.default_branch_blocks_deletion"


def _ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _repo_key(name: str) -> str:
    return f"github:repo:{ORG}/{name}"


def _pull_request(reviews: int) -> tuple[str, dict[str, Any]]:
    return ("PULL_REQUEST", {"requiredApprovingReviewCount": reviews,
                             "dismissStaleReviewsOnPush": True, "requireCodeOwnerReview": False,
                             "requireLastPushApproval": False,
                             "requiredReviewThreadResolution": False})


_ORG_ADMIN_BYPASS = {"bypassMode": "ALWAYS", "organizationAdmin": True, "enterpriseOwner": False,
                     "deployKey": False, "repositoryRoleName": None, "actor": None}
_APP_BYPASS = {"bypassMode": "ALWAYS", "organizationAdmin": False, "enterpriseOwner": False,
               "deployKey": False, "repositoryRoleName": None,
               "actor": {"__typename": "App", "slug": "release-bot", "name": "Release bot"}}


def sample_org() -> tuple[Org, dict[str, set[str]]]:
    repos = [
        # Protected by a classic rule, every security feature on: passes every check.
        Repo("api", 101, protection=protection_rule(1)),
        # Covered by an organisation ruleset instead (a bot may bypass it, no admin).
        Repo("web", 102),
        Repo("payments", 103),
        # GraphQL may not read its rule; REST answers 404 "Branch not protected".
        Repo("legacy-billing", 104, protection_restricted=True),
        Repo("docs-site", 105, visibility="public", protection=protection_rule(None),
             push_protection="disabled"),
        Repo("mobile", 106, protection=protection_rule(1, force_pushes=True),
             secret_scanning="disabled", push_protection="disabled"),
        Repo("infra", 107, protection=protection_rule(2, admins=False, deletions=True),
             vulnerability_alerts=False, collaborators={"contractor-x": "ADMIN"}),
        # A ruleset that asks for no approval and that organisation admins may bypass.
        Repo("ml-models", 108),
        # Archived and empty: nothing to protect, nothing judged on their branches.
        Repo("old-prototype", 109, archived=True, secret_scanning="disabled",
             push_protection="disabled", vulnerability_alerts=False),
        Repo("empty-repo", 110, default_branch=None),
    ]
    repos[1].collaborators = {"contractor-x": "READ"}
    repos[0].collaborators = {"auditor-y": "READ"}
    org = Org(
        ORG, default_repository_permission="write", default_workflow_permissions="write",
        members={"alice": {"role": "admin", "two_factor": True},
                 "bob": {"role": "admin", "two_factor": True},
                 "carol": {"role": "member", "two_factor": True},
                 "dana": {"role": "member", "two_factor": False},
                 "erin": {"role": "member", "two_factor": True}},
        outside_collaborators=["auditor-y", "contractor-x"],
        repos=repos,
        rulesets=[
            Ruleset(7001, "default-branch", repositories={"web", "payments"},
                    rules=[_pull_request(1), ("NON_FAST_FORWARD", None), ("DELETION", None)],
                    bypass=[_APP_BYPASS]),
            Ruleset(7002, "models-light", repositories={"ml-models"},
                    rules=[_pull_request(0), ("NON_FAST_FORWARD", None), ("DELETION", None)],
                    bypass=[_ORG_ADMIN_BYPASS]),
            # Only evaluated, never enforced: GitHub leaves it out of the rules of a branch.
            Ruleset(7003, "trial", enforcement="EVALUATE",
                    rules=[_pull_request(2), ("NON_FAST_FORWARD", None)]),
        ],
        alerts=[
            {"number": 1, "repository": "payments", "state": "open", "severity": "critical",
             "package": "lodash", "ghsa_id": "GHSA-jf85-cpcp-j695", "created_at": _ago(45)},
            {"number": 2, "repository": "web", "state": "open", "severity": "critical",
             "package": "minimist", "ghsa_id": "GHSA-xvch-5gv4-984h", "created_at": _ago(5)},
            {"number": 3, "repository": "api", "state": "open", "severity": "high",
             "package": "axios", "ghsa_id": "GHSA-wf5p-g6vw-rhxx", "created_at": _ago(90)},
            {"number": 4, "repository": "api", "state": "fixed", "severity": "critical",
             "package": "express", "ghsa_id": "GHSA-rv95-896h-c2vc", "created_at": _ago(120)},
        ])
    planted = {
        "github.organization.base_permission_at_most_read": {f"github:org:{ORG}"},
        "github.organization.workflow_token_read_only": {f"github:org:{ORG}"},
        "github.member.two_factor_enabled": {"github:member:dana"},
        "github.collaborator.no_admin_access": {"github:collaborator:contractor-x"},
        REVIEW: {_repo_key(n) for n in ("legacy-billing", "docs-site", "ml-models")},
        FORCE_PUSH: {_repo_key(n) for n in ("legacy-billing", "mobile")},
        ADMINS: {_repo_key(n) for n in ("legacy-billing", "infra", "ml-models")},
        DELETION: {_repo_key(n) for n in ("legacy-billing", "infra")},
        "github.repository.secret_scanning_enabled": {_repo_key("mobile")},
        "github.repository.secret_scanning_push_protection_enabled": {
            _repo_key(n) for n in ("docs-site", "mobile")},
        "github.repository.dependabot_alerts_enabled": {_repo_key("infra")},
        "github.repository.no_critical_alert_open_beyond_30_days": {_repo_key("payments")},
    }
    return org, planted


def scale_org(repositories: int) -> Org:
    """An organisation of `repositories` repositories for the benchmark: a quarter as many
    members, twenty outside collaborators, an organisation ruleset over every fifth
    repository and classic rules on the others, a critical alert open in every tenth, and five
    repositories whose rule only REST may read."""
    repos = []
    for n in range(repositories):
        repo = Repo(f"service-{n:05d}", 100_000 + n, protection=None if n % 5 == 0
                    else protection_rule(1 + n % 2, force_pushes=n % 17 == 0),
                    protection_restricted=n < 5, secret_scanning="disabled" if n % 13 == 0
                    else "enabled", vulnerability_alerts=n % 11 != 0)
        if n % 50 == 0:
            repo.collaborators = {f"contractor-{n % 20:02d}": "WRITE" if n % 100 else "ADMIN"}
        repos.append(repo)
    return Org(
        ORG, members={f"dev-{n:05d}": {"role": "admin" if n < 3 else "member",
                                       "two_factor": n % 40 != 0}
                      for n in range(max(repositories // 4, 1))},
        outside_collaborators=[f"contractor-{n:02d}" for n in range(20)],
        repos=repos,
        rulesets=[Ruleset(9001, "every-fifth", repositories={
            r.name for r in repos[::5]}, rules=[_pull_request(1), ("NON_FAST_FORWARD", None),
                                                ("DELETION", None)])],
        alerts=[{"number": n + 1, "repository": repos[n].name, "state": "open",
                 "severity": "critical", "package": f"pkg-{n}", "ghsa_id": f"GHSA-{n:04d}",
                 "created_at": _ago(10 + n % 60)} for n in range(0, repositories, 10)])
