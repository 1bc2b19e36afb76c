"""Directory roles: how many Global Administrators there are, and who holds privileged roles.
Only active assignments are listed; eligible (PIM) ones are not collected."""

from __future__ import annotations

from typing import Any

from checks.registry import ScopeView, check, scope_check
from collector.model import Verdict, errored, failed, not_applicable, passed

ASSIGNMENT = "entra.role_assignment"
DEFINITION = "entra.role_definition"
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
MIN_GLOBAL_ADMINS, MAX_GLOBAL_ADMINS = 2, 4
# Built-in roles that can change who holds rights, how they sign in, or the tenant's security
# configuration (by template id, the same in every tenant). Custom roles are not judged.
PRIVILEGED_ROLES = {
    GLOBAL_ADMINISTRATOR: "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
}


def _name(principal: dict[str, Any]) -> str:
    return str(principal.get("userPrincipalName") or principal.get("displayName")
               or principal["id"])


@scope_check(
    "entra.tenant.global_admins_between_2_and_4",
    scope="entra.tenant",
    uses=(ASSIGNMENT, DEFINITION),
    title=f"Between {MIN_GLOBAL_ADMINS} and {MAX_GLOBAL_ADMINS} principals are Global "
          "Administrators",
    controls={
        "A.8.2": "the most privileged role is kept to the few who need it, with a second "
                 "holder so that its use never rests on one person",
    },
    severity="high",
    remediation="Keep two to four Global Administrators (one of them an emergency access "
                "account); give others the least privileged role for their task, and make "
                "standing assignments eligible through Privileged Identity Management.",
)
def global_admins_between_2_and_4(view: ScopeView) -> Verdict:
    definitions = {d["id"] for d in view.of(DEFINITION)
                   if d.get("templateId") == GLOBAL_ADMINISTRATOR}
    if not definitions:
        return errored("the Global Administrator role definition was not collected")
    holders = sorted({a["principalId"] for a in view.of(ASSIGNMENT)
                      if a["roleDefinitionId"] in definitions})
    count = len(holders)
    if count < MIN_GLOBAL_ADMINS:
        return failed(f"{count} Global Administrator(s): no second holder if one is "
                      "unavailable")
    if count > MAX_GLOBAL_ADMINS:
        return failed(f"{count} Global Administrators, more than {MAX_GLOBAL_ADMINS}")
    return passed(f"{count} Global Administrators (active assignments)")


@check(
    "entra.role_assignment.no_guest_in_privileged_role",
    resource=ASSIGNMENT,
    title="No guest holds a privileged directory role",
    controls={
        "A.8.2": "a guest's account is governed by another organisation, which then decides "
                 "who exercises the tenant's privileged rights",
        "A.5.18": "privileged rights belong to the organisation's own accounts, whose "
                  "joiners and leavers it controls",
    },
    severity="high",
    remediation="Remove the role from the guest account; if the person needs it, create a "
                "member account for them under the organisation's own lifecycle.",
)
def no_guest_in_privileged_role(assignment: dict[str, Any]) -> Verdict:
    role = PRIVILEGED_ROLES.get(assignment["roleDefinitionId"])
    if role is None:
        return not_applicable("not a privileged built-in role")
    principal = assignment["principal"]
    if principal is None:
        return errored("the assignment's principal was not returned")
    kind = principal.get("@odata.type")
    if kind != "#microsoft.graph.user":
        return not_applicable(f"held by a {str(kind).rpartition('.')[2]}, not a user")
    if principal["userType"] == "Guest":
        return failed(f"guest {_name(principal)} holds {role}")
    return passed(f"{role} held by member {_name(principal)}")
