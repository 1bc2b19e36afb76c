"""An azure source split by management group as a whole: every named group was collected in
its last run window. The source's scope (provider `azure-management-groups`, the tenant) holds
a record per named group (`azure.management_groups.member`): its unit's last collection and the
subscriptions its evidence holds."""

from __future__ import annotations

from checks.registry import ScopeView, scope_check
from checks.units import every_unit_collected
from collector.model import Verdict

MEMBER = "azure.management_groups.member"


@scope_check(
    "azure-management-groups.every_management_group_collected",
    scope="azure-management-groups.tenant",
    uses=(MEMBER,),
    title="Every named management group was collected in its last run window",
    controls={
        "A.5.9": "the inventory covers every subscription below the named management groups, "
                 "each group with a dated record no older than its collection schedule",
        "A.5.36": "every management group is under continuous control monitoring: none drops "
                  "out unnoticed because Reader was removed from it or its collection fails",
    },
    severity="high",
    remediation="Assign the collector's principal Reader (or the Annexa reader role) on the "
                "management groups named, and look at their last run's error.",
)
def every_management_group_collected(tenant: ScopeView) -> Verdict:
    return every_unit_collected(tenant.of(MEMBER), "management_group", "management groups",
                                "the source names no management group")
