"""IAM: the basic roles on projects, service-account keys, and Data Access audit logs."""

from __future__ import annotations

from typing import Any

from checks.gcp._policy import bindings
from checks.registry import check
from checks.timestamps import days_since
from collector.model import FETCH_ERRORS, Verdict, errored, failed, not_applicable, passed

PROJECT = "gcp.project"
KEY = "gcp.iam.service_account_key"
MAX_KEY_AGE_DAYS = 90
BASIC_ROLES = ("roles/owner", "roles/editor")
# Google's own service agents hold basic roles that Google grants and manages.
SERVICE_AGENTS = ("@cloudservices.gserviceaccount.com", "@gcp-sa-")
DATA_ACCESS = ("DATA_READ", "DATA_WRITE")


@check(
    "gcp.project_no_user_owner",
    resource=PROJECT,
    title="No user holds the basic Owner role on a project",
    controls={"A.8.2": "Owner is every permission on the project: held by a person's own "
                       "account it is privileged access outside any role designed for it",
              "A.5.18": "access rights go to groups and predefined roles that can be "
                        "reviewed, not to individuals"},
    severity="high",
    remediation="Grant the people predefined roles for their work through groups; keep "
                "Owner, if at all, for a break-glass group.",
    needs=("iamPolicy",),
)
def project_no_user_owner(data: dict[str, Any]) -> Verdict:
    owners = sorted(m for role, m in bindings(data, required=True)
                    if role == "roles/owner" and m.startswith("user:"))
    if owners:
        return failed(f"users hold roles/owner: {', '.join(owners)}")
    return passed("no user holds roles/owner")


@check(
    "gcp.project_no_service_account_basic_role",
    resource=PROJECT,
    title="No service account holds Owner or Editor on a project",
    controls={"A.8.2": "a workload identity with a basic role holds nearly every permission "
                       "on the project, and so does whoever gets its credentials",
              "A.5.15": "workloads get the access their function needs, not all of it"},
    severity="high",
    remediation="Replace the basic role with the predefined roles the workload uses (the "
                "IAM recommender lists them).",
    needs=("iamPolicy",),
)
def project_no_service_account_basic_role(data: dict[str, Any]) -> Verdict:
    held = sorted(f"{m} holds {role}" for role, m in bindings(data, required=True)
                  if role in BASIC_ROLES and m.startswith("serviceAccount:")
                  and not any(agent in m for agent in SERVICE_AGENTS))
    if held:
        return failed("; ".join(held))
    return passed("no service account of the customer's holds a basic role")


@check(
    "gcp.service_account_key_younger_than_90_days",
    resource=KEY,
    title=f"User-managed service-account keys are younger than {MAX_KEY_AGE_DAYS} days",
    controls={"A.5.17": "a long-lived key file is a secret that spreads and leaks; rotating "
                        "it bounds how long a copy works",
              "A.8.5": "workloads authenticate with short-lived credentials, not with keys "
                       "kept for years"},
    severity="medium",
    remediation="Create a new key, move the workload to it and delete the old one; better, "
                "use workload identity federation or attached service accounts instead of "
                "keys.",
)
def service_account_key_younger_than_90_days(data: dict[str, Any]) -> Verdict:
    key = data["resource"]
    if key["keyType"] != "USER_MANAGED":
        return not_applicable(f"a {key['keyType']} key, which Google rotates")
    if key.get("disabled") is True:
        return not_applicable("the key is disabled")
    age = days_since(str(key["validAfterTime"]))
    if age >= MAX_KEY_AGE_DAYS:
        return failed(f"the key is {age:.0f} days old")
    return passed(f"the key is {age:.0f} days old")


def _data_access(configs: list[Any]) -> tuple[set[str], list[str]]:
    """The Data Access log types on for all services, and the members exempted from them."""
    kinds: set[str] = set()
    exempted: list[str] = []
    for config in configs:
        if config.get("service") != "allServices":
            continue
        for log in config.get("auditLogConfigs") or []:
            if log.get("logType") in DATA_ACCESS:
                kinds.add(str(log["logType"]))
                exempted.extend(str(m) for m in log.get("exemptedMembers") or [])
    return kinds, exempted


@check(
    "gcp.project_data_access_audit_logs",
    resource=PROJECT,
    title="Data Access audit logs (reads and writes) are on for all services of the project",
    controls={"A.8.15": "who read and changed which data is recorded, for every service",
              "A.8.16": "access to data can be monitored only where it is logged"},
    severity="medium",
    remediation="Turn on DATA_READ and DATA_WRITE for allServices in the audit config of the "
                "organization, or of the folder or project, without exempted members.",
    needs=("iamPolicy",),
)
def project_data_access_audit_logs(data: dict[str, Any]) -> Verdict:
    own = (data["iamPolicy"] or {}).get("auditConfigs") or []
    inherited = [c for a in data["inheritedAuditConfigs"] for c in a["auditConfigs"]]
    kinds, exempted = _data_access([*own, *inherited])
    if exempted:
        return failed(f"members are exempted from Data Access logs: {', '.join(exempted)}")
    if kinds == set(DATA_ACCESS):
        where = [a["ancestor"] for a in data["inheritedAuditConfigs"]
                 if _data_access(a["auditConfigs"])[0]]
        return passed("DATA_READ and DATA_WRITE are on for allServices"
                      + (f" (from {', '.join(where)})" if where else ""))
    unknown = (data.get(FETCH_ERRORS) or {}).get("inheritedAuditConfigs")
    if unknown:
        return errored(f"not set on the project or the ancestors read, and {unknown}")
    missing = ", ".join(sorted(set(DATA_ACCESS) - kinds))
    return failed(f"{missing} not on for allServices in the project or its ancestors")
