"""Microsoft Defender for Cloud: the plans that watch servers, storage, SQL and Key Vault are
on (the Standard tier), and its alerts reach someone.

The pricings list still carries retired plans (marked `deprecated`, with the plans that
replaced them in `replacedBy`): a plan is judged by its current entry, and a retired one by
its successors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from checks.azure.properties import prop
from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "azure.subscription"


def _current(pricings: list[dict[str, Any]], name: str,
             seen: frozenset[str] = frozenset()) -> list[dict[str, Any]] | None:
    """The current plans that stand for `name`: its own entry, or its successors if it is
    retired; None when the subscription lists no such plan."""
    entries = [p for p in pricings if str(p.get("name", "")).lower() == name.lower()]
    current = [p for p in entries if prop(p, "deprecated") is not True]
    if current:
        return current
    successors = [str(s) for p in entries for s in prop(p, "replacedBy") or []]
    found = [plan for s in successors if s.lower() not in seen
             for plan in _current(pricings, s, seen | {name.lower()}) or []]
    return found or None


def _plan_check(slug: str, plan: str, what: str, controls: Mapping[str, str]
                ) -> Callable[[dict[str, Any]], Verdict]:
    def judge(subscription: dict[str, Any]) -> Verdict:
        plans = _current(subscription.get("defender_pricings") or [], plan)
        if plans is None:
            return failed(f"the subscription's pricings have no {plan} plan")
        off = [f"{p.get('name')} ({prop(p, 'pricingTier')})" for p in plans
               if prop(p, "pricingTier") != "Standard"]
        if off:
            return failed(f"Defender for {what} is off: {', '.join(off)}")
        return passed(f"Defender for {what} on: " + ", ".join(
            f"{p.get('name')} Standard" + (f" {prop(p, 'subPlan')}" if isinstance(
                prop(p, "subPlan"), str) else "") for p in plans))

    judge.__name__ = f"{slug}_plan_standard"
    return check(
        f"azure.defender.{slug}_plan_standard",
        resource=KIND,
        title=f"Microsoft Defender for {what} is on (Standard) in every subscription",
        controls=controls,
        severity="high" if plan == "VirtualMachines" else "medium",
        remediation=f"Turn on the Defender for Cloud plan {plan} (pricing tier Standard) for "
                    "the subscription, in Environment settings or with a pricings PUT.",
        needs=("defender_pricings",),
    )(judge)


servers_plan_standard = _plan_check("servers", "VirtualMachines", "Servers", {
    "A.8.7": "servers are scanned for malware and their processes watched by Defender for "
             "Endpoint",
    "A.8.8": "the plan's vulnerability assessment finds missing patches and weak "
             "configurations on every server",
    "A.8.16": "anomalous activity on the servers raises security alerts",
})
storage_plan_standard = _plan_check("storage", "StorageAccounts", "Storage", {
    "A.8.16": "unusual access to storage accounts (from Tor, mass deletion, anonymous scans) "
              "raises security alerts",
})
sql_plan_standard = _plan_check("sql", "SqlServers", "SQL", {
    "A.8.8": "the plan's vulnerability assessment reports misconfigurations of the databases",
    "A.8.16": "SQL injection, brute force and unusual access to the databases raise security "
              "alerts",
})
keyvault_plan_standard = _plan_check("keyvault", "KeyVaults", "Key Vault", {
    "A.8.16": "unusual access to keys and secrets raises security alerts",
})


def _alerting(contact: dict[str, Any]) -> str | None:
    """Who the contact sends alerts to, or None if it sends none."""
    if prop(contact, "isEnabled") is False:
        return None
    sources = prop(contact, "notificationsSources") or []
    alerts = [s for s in sources if isinstance(s, dict) and s.get("sourceType") == "Alert"]
    if not alerts:
        return None
    emails = str(prop(contact, "emails") or "").strip()
    roles = prop(contact, "notificationsByRole") or {}
    by_role = roles.get("roles") if roles.get("state") == "On" else None
    if not emails and not by_role:
        return None
    who = ", ".join(filter(None, [emails, " and ".join(by_role or [])]))
    return f"{who} (alerts of severity {alerts[0].get('minimalSeverity', '?')} and above)"


@check(
    "azure.defender.security_contact_notified_of_alerts",
    resource=KIND,
    title="Defender for Cloud e-mails its security alerts to named contacts",
    controls={
        "A.8.16": "the alerts that monitoring raises reach people who can act on them",
        "A.5.24": "responders are named in advance and learn of an incident when it is "
                  "detected",
    },
    severity="medium",
    remediation="Set the subscription's security contact (Environment settings > Email "
                "notifications): e-mail addresses and/or roles, with alert notifications on.",
    needs=("security_contacts",),
)
def security_contact_notified_of_alerts(subscription: dict[str, Any]) -> Verdict:
    contacts = subscription.get("security_contacts") or []
    notified = [who for c in contacts if (who := _alerting(c))]
    if notified:
        return passed(f"security alerts e-mailed to {notified[0]}")
    if contacts:
        return failed("the security contact sends no alert notifications to anyone")
    return failed("no security contact")
