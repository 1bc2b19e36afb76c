"""Azure RBAC: few people own a subscription."""

from __future__ import annotations

from checks.registry import ScopeView, scope_check
from collector.model import Verdict, failed, passed

OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"  # the built-in Owner role's id
MAX_OWNERS = 3


@scope_check(
    "azure.authorization.subscription_owners_at_most_three",
    scope="azure.subscription",
    uses=("azure.authorization.role_assignment",),
    title="At most three principals hold Owner on a subscription",
    controls={"A.8.2": "Owner grants every right including granting rights to others: it is "
                       "kept to the few who must hold it"},
    severity="medium",
    remediation="Remove Owner from principals that do not need it; give them Contributor or a "
                "narrower role, or make Owner eligible through Privileged Identity Management.",
)
def subscription_owners_at_most_three(subscription: ScopeView) -> Verdict:
    owners = sorted({
        str(props.get("principalId"))
        for assignment in subscription.of("azure.authorization.role_assignment")
        if (props := assignment.get("properties") or {})
        and str(props.get("roleDefinitionId", "")).lower().endswith(f"/{OWNER_ROLE}")
        and str(props.get("scope", "")).lower() == subscription.scope.lower()
    })
    if len(owners) > MAX_OWNERS:
        return failed(f"{len(owners)} principals hold Owner on the subscription: "
                      f"{', '.join(owners)}")
    return passed(f"{len(owners)} principal(s) hold Owner on the subscription")
