"""Members and outside collaborators: 2FA, and administration of repositories by people from
outside the organisation."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, passed

TWO_FACTOR_DISABLED = "two_factor_disabled"
PERMISSIONS = "repository_permissions"


@check(
    "github.member.two_factor_enabled",
    resource="github.member",
    title="Every member has two-factor authentication enabled",
    controls={
        "A.8.5": "a member without a second factor reaches the organisation's code with a "
                 "password alone",
    },
    severity="high",
    remediation="Ask the member to enable 2FA (Settings, Password and authentication), then "
                "require it for the organisation; remove members who do not.",
    needs=(TWO_FACTOR_DISABLED,),
)
def two_factor_enabled(member: dict[str, Any]) -> Verdict:
    disabled = member[TWO_FACTOR_DISABLED]
    if not isinstance(disabled, bool):
        raise ValueError(f"{TWO_FACTOR_DISABLED} is {disabled!r}, not true or false")
    if disabled:
        return failed("GitHub lists this member among those without 2FA")
    return passed("two-factor authentication enabled")


@check(
    "github.collaborator.no_admin_access",
    resource="github.collaborator",
    title="No outside collaborator administers a repository",
    controls={
        "A.8.2": "administration of a repository (its protection, collaborators and secrets) "
                 "is a privilege for the organisation's own people",
        "A.5.18": "an outside collaborator's access is to be limited to what their work for "
                  "the organisation needs",
    },
    severity="high",
    remediation="Lower the collaborator's permission on the repository to write or less "
                "(repository settings, Collaborators and teams), or make them a member under "
                "the organisation's policies.",
    needs=(PERMISSIONS,),
)
def no_admin_access(collaborator: dict[str, Any]) -> Verdict:
    permissions = collaborator[PERMISSIONS]
    if not isinstance(permissions, dict):
        raise ValueError(f"{PERMISSIONS} is {type(permissions).__name__}, not an object")
    administered = sorted(repo for repo, level in permissions.items() if level == "ADMIN")
    if administered:
        return failed(f"administers {', '.join(administered)}")
    return passed(f"no admin access ({len(permissions)} repositories)")
