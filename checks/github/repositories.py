"""Repositories that are not archived: their default branch's protection (a classic rule or
an active ruleset: approving review, no force pushes or deletion, administrators bound), secret
scanning with push protection, Dependabot alerts and how long critical ones stay open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.github.protection import DEFAULT_BRANCH, PROTECTION, Classic, classic, rules
from checks.registry import check
from checks.timestamps import days_since
from collector.model import Verdict, failed, not_applicable, passed

KIND = "github.repository"
ALERTS_ENABLED = "has_vulnerability_alerts_enabled"
CRITICAL_ALERTS = "open_critical_dependabot_alerts"
MAX_CRITICAL_DAYS = 30
BRANCH_NEEDS = (DEFAULT_BRANCH, PROTECTION)
BRANCH_REMEDIATION = (" Repository settings, Rules, Rulesets (or an organisation ruleset "
                      "targeting the default branch of every repository), or Branches, Branch "
                      "protection rules.")


def _archived(repo: dict[str, Any]) -> Verdict | None:
    if repo["archived"] is True:
        return not_applicable("archived: read-only, nothing can be pushed")
    return None


def _unless_branch(repo: dict[str, Any]) -> Verdict | None:
    """The verdict for a repository whose default branch is not judged."""
    skip = _archived(repo)
    if skip is None and repo[DEFAULT_BRANCH] is None:
        return not_applicable("empty repository: no default branch yet")
    return skip


def _unprotected(repo: dict[str, Any]) -> str:
    return f"{repo['default_branch']} is not protected (no branch protection rule, no ruleset)"


def _blocks(repo: dict[str, Any], rule_type: str, allows: Callable[[Classic], bool],
            what: str) -> Verdict:
    """Whether an active ruleset's rule of `rule_type`, or a classic rule that does not
    allow it, refuses `what` on the default branch (rulesets add to a classic rule: the
    stricter wins)."""
    skip = _unless_branch(repo)
    if skip is not None:
        return skip
    rule, active = classic(repo), rules(repo)
    blocking = [r.ruleset for r in active if r.type == rule_type]
    if blocking:
        return passed(f"ruleset {blocking[0]} refuses {what}")
    if rule is not None and not allows(rule):
        return passed(f"branch protection refuses {what}")
    if rule is None:
        return failed(_unprotected(repo) if not active else f"no rule refuses {what}")
    return failed(f"branch protection allows {what}")


@check(
    "github.repository.default_branch_requires_approving_review",
    resource=KIND,
    title="The default branch requires at least one approving review",
    controls={
        "A.8.32": "a change reaches the default branch only after someone other than its "
                  "author approved it",
        "A.8.4": "write access to a repository is not, alone, the power to change its "
                 "released code",
        "A.8.25": "peer review is the secure development life cycle's control on every change",
    },
    severity="high",
    remediation="Require a pull request with at least one approval before merging."
                + BRANCH_REMEDIATION,
    needs=BRANCH_NEEDS,
)
def default_branch_requires_approving_review(repo: dict[str, Any]) -> Verdict:
    skip = _unless_branch(repo)
    if skip is not None:
        return skip
    rule, active = classic(repo), rules(repo)
    reviewing = [r.ruleset for r in active if r.type == "PULL_REQUEST" and r.reviews >= 1]
    if rule is not None and rule.reviews >= 1:
        return passed(f"branch protection requires {rule.reviews} approving review(s)")
    if reviewing:
        return passed(f"ruleset {reviewing[0]} requires an approving review")
    if rule is None and not active:
        return failed(_unprotected(repo))
    return failed("protected, but no rule requires an approving review")


@check(
    "github.repository.default_branch_blocks_force_pushes",
    resource=KIND,
    title="The default branch refuses force pushes",
    controls={
        "A.8.32": "a force push rewrites the history of changes that review and audit rely on",
        "A.8.4": "reviewed code can be replaced behind the review by anyone who may push",
    },
    severity="high",
    remediation="Block force pushes on the default branch." + BRANCH_REMEDIATION,
    needs=BRANCH_NEEDS,
)
def default_branch_blocks_force_pushes(repo: dict[str, Any]) -> Verdict:
    return _blocks(repo, "NON_FAST_FORWARD", lambda rule: rule.force_pushes, "force pushes")


@check(
    "github.repository.default_branch_blocks_deletion",
    resource=KIND,
    title="The default branch cannot be deleted",
    controls={
        "A.8.32": "deleting the default branch discards the record of changes",
        "A.8.4": "anyone who may push could remove the released code",
    },
    severity="medium",
    remediation="Restrict deletions of the default branch." + BRANCH_REMEDIATION,
    needs=BRANCH_NEEDS,
)
def default_branch_blocks_deletion(repo: dict[str, Any]) -> Verdict:
    return _blocks(repo, "DELETION", lambda rule: rule.deletions, "deletion")


@check(
    "github.repository.default_branch_protection_binds_admins",
    resource=KIND,
    title="The default branch's protection applies to administrators too",
    controls={
        "A.8.2": "administrators are the accounts an attacker wants most: exempting them from "
                 "review makes their privilege a way around it",
        "A.8.32": "every change, an administrator's included, goes through the same review",
    },
    severity="high",
    remediation="Classic rule: tick Do not allow bypassing the above settings (include "
                "administrators). Ruleset: remove the organisation admin and repository admin "
                "roles from its bypass list." + BRANCH_REMEDIATION,
    needs=BRANCH_NEEDS,
)
def default_branch_protection_binds_admins(repo: dict[str, Any]) -> Verdict:
    skip = _unless_branch(repo)
    if skip is not None:
        return skip
    rule, active = classic(repo), rules(repo)
    if rule is None and not active:
        return failed(_unprotected(repo))
    if rule is not None and not rule.admins_included:
        return failed("administrators are exempt from the branch protection rule")
    bypassed = sorted({r.ruleset for r in active if r.admin_bypass})
    if bypassed:
        return failed(f"administrators may bypass ruleset {', '.join(bypassed)}")
    return passed("administrators are bound by the branch's protection")


def _security(repo: dict[str, Any], feature: str, name: str) -> Verdict:
    """A feature of the repository's security_and_analysis is on (archived: not judged)."""
    skip = _archived(repo)
    if skip is not None:
        return skip
    settings = repo["security_and_analysis"]
    if settings is None:
        raise ValueError("security_and_analysis is not shown to these credentials: it needs "
                         "Administration: read on the repository")
    status = str((settings.get(feature) or {}).get("status") or "disabled")
    return passed(f"{name} on") if status == "enabled" else failed(f"{name} {status}")


@check(
    "github.repository.secret_scanning_enabled",
    resource=KIND,
    title="Secret scanning is on",
    controls={
        "A.5.17": "credentials committed to code are authentication information out of its "
                  "owner's control: they must be found and revoked",
        "A.8.12": "a secret pushed to a repository leaks to everyone who can read it",
    },
    severity="high",
    remediation="Repository settings, Code security: enable Secret scanning (or enable it "
                "for all repositories with a security configuration of the organisation).",
)
def secret_scanning_enabled(repo: dict[str, Any]) -> Verdict:
    return _security(repo, "secret_scanning", "secret scanning")


@check(
    "github.repository.secret_scanning_push_protection_enabled",
    resource=KIND,
    title="Push protection refuses pushes that contain secrets",
    controls={
        "A.5.17": "a secret refused at push time never becomes authentication information "
                  "that must be rotated",
        "A.8.12": "push protection stops the leak instead of reporting it",
        "A.8.28": "secure coding keeps credentials out of code; push protection enforces it",
    },
    severity="medium",
    remediation="Repository settings, Code security: enable Push protection under Secret "
                "scanning.",
)
def secret_scanning_push_protection_enabled(repo: dict[str, Any]) -> Verdict:
    return _security(repo, "secret_scanning_push_protection", "push protection")


@check(
    "github.repository.dependabot_alerts_enabled",
    resource=KIND,
    title="Dependabot alerts are on",
    controls={
        "A.8.8": "known vulnerabilities in dependencies are reported only where Dependabot "
                 "alerts are on",
    },
    severity="high",
    remediation="Repository settings, Code security: enable Dependabot alerts (with the "
                "dependency graph).",
    needs=(ALERTS_ENABLED,),
)
def dependabot_alerts_enabled(repo: dict[str, Any]) -> Verdict:
    skip = _archived(repo)
    if skip is not None:
        return skip
    enabled = repo[ALERTS_ENABLED]
    if not isinstance(enabled, bool):
        raise ValueError(f"{ALERTS_ENABLED} is {enabled!r}, not true or false")
    return passed("Dependabot alerts on") if enabled else failed("Dependabot alerts off")


@check(
    "github.repository.no_critical_alert_open_beyond_30_days",
    resource=KIND,
    title=f"No critical Dependabot alert stays open beyond {MAX_CRITICAL_DAYS} days",
    controls={
        "A.8.8": "a critical vulnerability known for a month and still unfixed is not managed",
    },
    severity="critical",
    remediation="Merge the Dependabot security update, upgrade the dependency or, if the code "
                "is not affected, dismiss the alert with its reason.",
    needs=(CRITICAL_ALERTS,),
)
def no_critical_alert_open_beyond_30_days(repo: dict[str, Any]) -> Verdict:
    skip = _archived(repo)
    if skip is not None:
        return skip
    alerts = repo[CRITICAL_ALERTS]
    stale = sorted((a for a in alerts if days_since(a["created_at"]) > MAX_CRITICAL_DAYS),
                   key=lambda a: a["created_at"])
    if stale:
        oldest = stale[0]
        return failed(f"{len(stale)} critical alert(s) open beyond {MAX_CRITICAL_DAYS} days, "
                      f"the oldest #{oldest['number']} ({oldest.get('ghsa_id')}) since "
                      f"{oldest['created_at']}")
    return passed(f"{len(alerts)} open critical alert(s), none older than "
                  f"{MAX_CRITICAL_DAYS} days")
