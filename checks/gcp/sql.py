"""Cloud SQL instances: who may connect, whether they must use TLS, and backups."""

from __future__ import annotations

from typing import Any

from checks.address_ranges import coverage
from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed

INSTANCE = "gcp.sql.instance"
ENCRYPTED_MODES = frozenset({"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"})


def _ip(data: dict[str, Any]) -> dict[str, Any]:
    return data["resource"]["settings"]["ipConfiguration"]


@check(
    "gcp.sql_no_world_authorized_network",
    resource=INSTANCE,
    title="No Cloud SQL instance authorises the internet (0.0.0.0/0, ::/0, or ranges that "
          "add up to it)",
    controls={"A.8.20": "an authorised network of the whole internet lets any address try "
                        "to sign in to the database",
              "A.8.3": "access to the database is not restricted to the clients that need "
                       "it"},
    severity="critical",
    remediation="Remove the network from the instance's authorised networks; connect through "
                "private IP or the Cloud SQL Auth Proxy.",
)
def sql_no_world_authorized_network(data: dict[str, Any]) -> Verdict:
    networks = _ip(data).get("authorizedNetworks") or []
    admitted = coverage(n.get("value") for n in networks)
    if admitted.malformed:
        return errored(f"authorised networks that are not ranges: "
                       f"{', '.join(admitted.malformed)}")
    if admitted.broad:
        return failed(f"authorised networks admit {admitted.describe()}")
    return passed(f"{len(networks)} authorised networks, none admitting the internet at large")


@check(
    "gcp.sql_requires_ssl",
    resource=INSTANCE,
    title="Cloud SQL instances accept only encrypted connections",
    controls={"A.8.24": "connections to the database are encrypted in transit",
              "A.8.21": "the database service refuses clients that would send credentials "
                        "and data in the clear"},
    severity="high",
    remediation="Set the instance's SSL mode to ENCRYPTED_ONLY or "
                "TRUSTED_CLIENT_CERTIFICATE_REQUIRED (gcloud sql instances patch --ssl-mode).",
)
def sql_requires_ssl(data: dict[str, Any]) -> Verdict:
    ip = _ip(data)
    mode = ip.get("sslMode")
    if mode is not None:
        if mode in ENCRYPTED_MODES:
            return passed(f"SSL mode {mode}")
        return failed(f"SSL mode {mode}: unencrypted connections are accepted")
    if ip.get("requireSsl") is True:
        return passed("requireSsl is on")
    return failed("neither an encrypting SSL mode nor requireSsl: unencrypted connections are "
                  "accepted")


@check(
    "gcp.sql_backups_enabled",
    resource=INSTANCE,
    title="Cloud SQL instances take automated backups",
    controls={"A.8.13": "the database can be restored from a backup that was taken without "
                        "anyone remembering to"},
    severity="high",
    remediation="Turn on automated backups (gcloud sql instances patch --backup-start-time), "
                "with point-in-time recovery where the engine offers it.",
)
def sql_backups_enabled(data: dict[str, Any]) -> Verdict:
    instance = data["resource"]
    if instance.get("instanceType") == "READ_REPLICA_INSTANCE":
        return not_applicable("a read replica: its primary's backups cover it")
    if instance["settings"]["backupConfiguration"].get("enabled") is True:
        return passed("automated backups are on")
    return failed("automated backups are off")


@check(
    "gcp.sql_no_public_ip",
    resource=INSTANCE,
    title="Cloud SQL instances have no public IP address",
    controls={"A.8.20": "a database with a public address can be reached from the internet "
                        "by anyone an authorised network or a mistake lets in",
              "A.8.22": "databases sit in the private network of the workloads that use them"},
    severity="medium",
    remediation="Give the instance a private IP and turn its public IP off (gcloud sql "
                "instances patch --no-assign-ip).",
)
def sql_no_public_ip(data: dict[str, Any]) -> Verdict:
    if _ip(data)["ipv4Enabled"] is True:
        return failed("the instance has a public IPv4 address")
    return passed("the instance has no public IPv4 address")
