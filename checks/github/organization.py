"""The organisation's own settings: 2FA, the base permission of members on every repository,
what its Actions workflows' token may do, and who may publish repositories."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "github.organization"
WORKFLOW = "actions_workflow_permissions"
# The base permissions that let a member read at most.
AT_MOST_READ = ("none", "read")


def _setting(org: dict[str, Any], name: str) -> Any:
    """A setting GitHub shows only to an owner (or an App with Organization administration:
    read): null to anyone else, which must not pass."""
    value = org.get(name)
    if value is None:
        raise ValueError(f"{name} is not shown to these credentials: it needs an owner's token "
                         "or Organization administration: read")
    return value


@check(
    "github.organization.two_factor_required",
    resource=KIND,
    title="The organisation requires two-factor authentication of its members",
    controls={
        "A.8.5": "a member who can sign in with a password alone reaches the organisation's "
                 "code with a single stolen secret",
        "A.5.17": "requiring a second factor is the organisation's rule for the authentication "
                  "information of everyone who joins it",
    },
    severity="high",
    remediation="Organization settings, Authentication security: Require two-factor "
                "authentication for everyone in the organisation (members without it are "
                "removed, so enrol them first).",
)
def two_factor_required(org: dict[str, Any]) -> Verdict:
    if _setting(org, "two_factor_requirement_enabled") is True:
        return passed("two-factor authentication required of every member")
    return failed("two-factor authentication is not required")


@check(
    "github.organization.base_permission_at_most_read",
    resource=KIND,
    title="Members' base permission on repositories is at most read",
    controls={
        "A.8.4": "write access to every repository for every member is not access to source "
                 "code granted by need",
        "A.5.15": "access is to be granted by teams and roles that name who needs it, not by "
                  "membership of the organisation",
    },
    severity="high",
    remediation="Organization settings, Member privileges, Base permissions: No permission or "
                "Read; grant write through teams on the repositories that need it.",
)
def base_permission_at_most_read(org: dict[str, Any]) -> Verdict:
    permission = str(_setting(org, "default_repository_permission"))
    if permission in AT_MOST_READ:
        return passed(f"base permission is {permission}")
    return failed(f"every member holds {permission} on every repository")


@check(
    "github.organization.workflow_token_read_only",
    resource=KIND,
    title="Workflows' GITHUB_TOKEN is read-only by default",
    controls={
        "A.8.4": "a workflow token that may write lets any workflow, or a compromised action "
                 "in it, change the code without review",
        "A.8.2": "write access for every workflow run is a privilege granted by default, not "
                 "by need",
    },
    severity="medium",
    remediation="Organization settings, Actions, General, Workflow permissions: Read repository "
                "contents and packages permissions; give a workflow more with `permissions:`.",
    needs=(WORKFLOW,),
)
def workflow_token_read_only(org: dict[str, Any]) -> Verdict:
    permissions = _setting(org, WORKFLOW)
    default = _setting(permissions, "default_workflow_permissions")
    if default == "read":
        return passed("the workflow token reads by default")
    return failed(f"the workflow token's default permission is {default}")


@check(
    "github.organization.workflows_cannot_approve_pull_requests",
    resource=KIND,
    title="Workflows cannot approve pull requests",
    controls={
        "A.8.32": "a workflow that approves a pull request turns the required human review "
                  "of a change into a formality",
        "A.8.4": "a workflow approval lets code reach a protected branch that no person read",
    },
    severity="medium",
    remediation="Organization settings, Actions, General, Workflow permissions: clear Allow "
                "GitHub Actions to create and approve pull requests.",
    needs=(WORKFLOW,),
)
def workflows_cannot_approve_pull_requests(org: dict[str, Any]) -> Verdict:
    approve = _setting(_setting(org, WORKFLOW), "can_approve_pull_request_reviews")
    if approve is False:
        return passed("workflows cannot approve pull requests")
    return failed("workflows can create and approve pull requests")


@check(
    "github.organization.members_cannot_create_public_repositories",
    resource=KIND,
    title="Members cannot create public repositories",
    controls={
        "A.8.12": "a member who can create public repositories can publish the organisation's "
                  "code by mistake",
        "A.8.3": "what the organisation shows the world is decided by its owners, not by any "
                 "member",
    },
    severity="medium",
    remediation="Organization settings, Member privileges, Repository creation: clear Public.",
)
def members_cannot_create_public_repositories(org: dict[str, Any]) -> Verdict:
    if _setting(org, "members_can_create_public_repositories") is False:
        return passed("only owners create public repositories")
    return failed("members can create public repositories")
