"""Compute Engine instances: external addresses, and the default service account with access
to every API."""

from __future__ import annotations

from typing import Any

from checks.registry import check
from collector.model import Verdict, failed, passed

INSTANCE = "gcp.compute.instance"
DEFAULT_ACCOUNT = "-compute@developer.gserviceaccount.com"
FULL_ACCESS = "https://www.googleapis.com/auth/cloud-platform"


@check(
    "gcp.compute_instance_no_public_ip",
    resource=INSTANCE,
    title="Instances have no external IP address",
    controls={"A.8.20": "an instance with an external address is reachable from the internet "
                        "whatever the load balancers and proxies in front of the rest",
              "A.8.22": "instances stay inside the network and reach out through Cloud NAT"},
    severity="medium",
    remediation="Remove the access configs of the instance's network interfaces; give it "
                "outbound access through Cloud NAT and inbound through a load balancer or "
                "Identity-Aware Proxy. Enforce constraints/compute.vmExternalIpAccess.",
)
def compute_instance_no_public_ip(data: dict[str, Any]) -> Verdict:
    external = [str(c.get("natIP") or c.get("name") or "an ephemeral address")
                for nic in data["resource"]["networkInterfaces"]
                for c in nic.get("accessConfigs") or []]
    if external:
        return failed(f"external address: {', '.join(external)}")
    return passed("no network interface has an external address")


@check(
    "gcp.compute_instance_default_sa_full_access",
    resource=INSTANCE,
    title="No instance runs as the default service account with access to all Cloud APIs",
    controls={"A.8.2": "the default Compute service account holds Editor on the project; "
                       "with the cloud-platform scope anyone on the instance holds it too",
              "A.5.15": "the instance's access is not limited to what its workload needs"},
    severity="high",
    remediation="Run the instance as a service account of its own with only the roles its "
                "workload needs, or at least drop the cloud-platform scope.",
)
def compute_instance_default_sa_full_access(data: dict[str, Any]) -> Verdict:
    accounts = data["resource"].get("serviceAccounts") or []
    for account in accounts:
        email = str(account.get("email", ""))
        if email.endswith(DEFAULT_ACCOUNT) and FULL_ACCESS in (account.get("scopes") or []):
            return failed(f"runs as {email} with the cloud-platform scope")
    if not accounts:
        return passed("runs without a service account")
    return passed(f"runs as {', '.join(str(a.get('email')) for a in accounts)} without full "
                  "access as the default service account")
