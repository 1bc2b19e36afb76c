"""Data and platform services: BigQuery datasets, Cloud DNS zones, GKE clusters."""

from __future__ import annotations

from typing import Any

from checks.gcp._policy import PUBLIC_MEMBERS
from checks.registry import check
from collector.model import Verdict, failed, not_applicable, passed


@check(
    "gcp.bigquery_dataset_not_public",
    resource="gcp.bigquery.dataset",
    title="No BigQuery dataset grants access to allUsers or allAuthenticatedUsers",
    controls={"A.8.3": "a dataset open to anyone, or to any Google account, restricts access "
                       "to its tables to nobody",
              "A.8.12": "public datasets are how tables leak without anyone exporting them"},
    severity="critical",
    remediation="Remove the allUsers / allAuthenticatedUsers entries from the dataset's "
                "access list (bq update --source with the edited access list).",
)
def bigquery_dataset_not_public(data: dict[str, Any]) -> Verdict:
    public = sorted(f"{entry.get('role', 'a role')} to {who}"
                    for entry in data["resource"]["access"]
                    for who in (entry.get("specialGroup"), entry.get("iamMember"))
                    if who in PUBLIC_MEMBERS)
    if public:
        return failed("the dataset is public: " + "; ".join(public))
    return passed("no access entry names allUsers or allAuthenticatedUsers")


@check(
    "gcp.dns_zone_dnssec",
    resource="gcp.dns.managed_zone",
    title="Public Cloud DNS zones are signed with DNSSEC",
    controls={"A.8.21": "resolvers can verify that the zone's answers are the organisation's "
                        "own, not spoofed or poisoned",
              "A.8.20": "the names that lead to the network's services cannot be redirected"},
    severity="medium",
    remediation="Turn on DNSSEC (gcloud dns managed-zones update ZONE --dnssec-state on) and "
                "publish the DS record at the registrar.",
)
def dns_zone_dnssec(data: dict[str, Any]) -> Verdict:
    zone = data["resource"]
    if zone.get("visibility", "public") != "public":
        return not_applicable(f"a {zone['visibility']} zone, which resolvers outside never see")
    state = (zone.get("dnssecConfig") or {}).get("state", "off")
    if state == "on":
        return passed("DNSSEC is on")
    return failed(f"DNSSEC is {state}")


@check(
    "gcp.gke_legacy_abac_disabled",
    resource="gcp.container.cluster",
    title="GKE clusters do not use legacy ABAC",
    controls={"A.8.2": "legacy ABAC grants broad, static permissions that Kubernetes RBAC "
                       "cannot narrow",
              "A.5.15": "access inside the cluster follows RBAC roles that can be reviewed"},
    severity="high",
    remediation="Disable legacy authorization (gcloud container clusters update CLUSTER "
                "--no-enable-legacy-authorization) after moving grants to RBAC.",
)
def gke_legacy_abac_disabled(data: dict[str, Any]) -> Verdict:
    # The GKE API writes `legacyAbac: {}` for a cluster that never had it on.
    if (data["resource"].get("legacyAbac") or {}).get("enabled") is True:
        return failed("legacy ABAC is on")
    return passed("legacy ABAC is off")
