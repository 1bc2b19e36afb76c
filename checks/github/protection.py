"""What protects a repository's default branch, read from the evidence in either shape the
connector keeps: the classic rule as GraphQL gives it (or as REST gives it, where GraphQL could
not), and the rules of the active rulesets that apply to the branch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_BRANCH = "default_branch_ref"
PROTECTION = "branch_protection"  # REST's answer, where GraphQL could not read the rule


@dataclass(frozen=True)
class Classic:
    reviews: int
    force_pushes: bool
    deletions: bool
    admins_included: bool


@dataclass(frozen=True)
class Rule:
    type: str
    ruleset: str
    reviews: int
    admin_bypass: bool  # organisation or enterprise owners, or the repository's admin role


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name} is {value!r}, not true or false")
    return value


def classic(repo: dict[str, Any]) -> Classic | None:
    """The classic rule of the default branch, None if there is none."""
    if PROTECTION in repo:
        rest = repo[PROTECTION]
        if rest is None:
            return None
        reviews = rest.get("required_pull_request_reviews") or {}
        return Classic(int(reviews.get("required_approving_review_count") or 0),
                       _flag(rest["allow_force_pushes"], "enabled"),
                       _flag(rest["allow_deletions"], "enabled"),
                       _flag(rest["enforce_admins"], "enabled"))
    rule = repo[DEFAULT_BRANCH]["branchProtectionRule"]
    if rule is None:
        return None
    reviews = int(rule["requiredApprovingReviewCount"] or 0) if _flag(
        rule, "requiresApprovingReviews") else 0
    return Classic(reviews, _flag(rule, "allowsForcePushes"), _flag(rule, "allowsDeletions"),
                   _flag(rule, "isAdminEnforced"))


def rules(repo: dict[str, Any]) -> list[Rule]:
    """The rules of active rulesets on the default branch (GraphQL lists only those)."""
    found = []
    for node in repo[DEFAULT_BRANCH]["rules"]["nodes"]:
        ruleset = node["repositoryRuleset"]
        if ruleset is None:
            raise ValueError(f"a {node['type']} rule's ruleset is not shown to these "
                             "credentials")
        if ruleset["enforcement"] != "ACTIVE":
            continue
        bypass = ruleset["bypassActors"]
        if bypass is None:
            raise ValueError(f"ruleset {ruleset['name']!r}: its bypass actors are not shown "
                             "to these credentials (Administration: read)")
        if bypass["totalCount"] > len(bypass["nodes"]):
            raise ValueError(f"ruleset {ruleset['name']!r}: more bypass actors than were read")
        admin = any(actor["organizationAdmin"] or actor["enterpriseOwner"]
                    or actor.get("repositoryRoleName") == "admin" for actor in bypass["nodes"])
        parameters = node.get("parameters") or {}
        found.append(Rule(node["type"], ruleset["name"],
                          int(parameters.get("requiredApprovingReviewCount") or 0), admin))
    return found
