"""Azure Monitor: the subscription's activity log (who changed what in its control plane) is
exported beyond its 90 days of built-in retention."""

from __future__ import annotations

from typing import Any

from checks.azure.properties import prop
from checks.registry import check
from collector.model import Verdict, failed, passed

REQUIRED = ("Administrative", "Security")
DESTINATIONS = ("workspaceId", "storageAccountId", "eventHubAuthorizationRuleId",
                "marketplacePartnerId")


def _exported(setting: dict[str, Any]) -> set[str]:
    """The categories `setting` sends to some destination."""
    if not any(prop(setting, d) for d in DESTINATIONS):
        return set()
    logs = [log for log in prop(setting, "logs") or [] if log.get("enabled") is True]
    if any(log.get("categoryGroup") == "allLogs" for log in logs):
        return set(REQUIRED)
    return {str(log.get("category")) for log in logs}


@check(
    "azure.monitor.activity_log_exported",
    resource="azure.subscription",
    title="The subscription's activity log is exported by a diagnostic setting",
    controls={"A.8.15": "administrative and security events of the subscription are kept, "
                        "past the activity log's 90 days, in a workspace or storage account "
                        "under the organisation's retention"},
    severity="medium",
    remediation="Create a subscription diagnostic setting that sends at least the "
                "Administrative and Security categories to a Log Analytics workspace or "
                "storage account.",
    needs=("diagnostic_settings",),
)
def activity_log_exported(subscription: dict[str, Any]) -> Verdict:
    settings = subscription.get("diagnostic_settings") or []
    for setting in settings:
        if set(REQUIRED) <= _exported(setting):
            return passed(f"diagnostic setting {setting.get('name')} exports "
                          f"{', '.join(REQUIRED)} events")
    if not settings:
        return failed("no diagnostic setting: the activity log is kept 90 days only")
    exported = sorted(set().union(*(_exported(s) for s in settings)))
    return failed(f"no diagnostic setting exports {' and '.join(REQUIRED)} events (exported: "
                  f"{', '.join(exported) or 'nothing'})")
