"""Admin roles: how many people hold the super admin role."""

from __future__ import annotations

from checks.registry import ScopeView, scope_check
from collector.model import Verdict, errored, failed, passed

ROLE = "google_workspace.role"
ROLE_ASSIGNMENT = "google_workspace.role_assignment"
MIN_SUPER_ADMINS, MAX_SUPER_ADMINS = 2, 4


@scope_check(
    "google_workspace.super_admin_count_between_2_and_4",
    scope="google_workspace.customer",
    uses=(ROLE, ROLE_ASSIGNMENT),
    title=f"Between {MIN_SUPER_ADMINS} and {MAX_SUPER_ADMINS} users hold the super admin role",
    controls={"A.8.2": "unrestricted rights are held by few named people, and by more than "
                       "one, so that they are neither spread wide nor lost with one account"},
    severity="high",
    remediation="Keep two to four super admins (one of them a break-glass account with a "
                "security key); give everyone else a delegated admin role that covers "
                "their work.",
)
def super_admin_count_between_2_and_4(customer: ScopeView) -> Verdict:
    roles = {str(r["roleId"]) for r in customer.of(ROLE) if r.get("isSuperAdminRole") is True}
    if not roles:
        return errored("no role is marked isSuperAdminRole: the super admin role is missing "
                       "from the roles listing")
    assigned = [a for a in customer.of(ROLE_ASSIGNMENT) if str(a.get("roleId")) in roles
                and a.get("assigneeType", "user") == "user"]
    if any(not a.get("assignedTo") for a in assigned):
        return errored("a super admin role assignment names nobody (assignedTo missing)")
    holders = sorted({str(a["assignedTo"]) for a in assigned})
    count = len(holders)
    who = ", ".join(f"google_workspace:user:{h}" for h in holders) or "nobody"
    if count < MIN_SUPER_ADMINS:
        plural = "" if count == 1 else "s"
        return failed(f"{count} super admin{plural} ({who}): no second one can act when an "
                      "account is unavailable")
    if count > MAX_SUPER_ADMINS:
        return failed(f"{count} super admins, more than {MAX_SUPER_ADMINS}: {who}")
    return passed(f"{count} super admins: {who}")
