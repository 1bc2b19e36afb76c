"""Azure SQL: servers record what is done to their data, refuse old TLS and are not open to
every address; their databases are encrypted at rest."""

from __future__ import annotations

from typing import Any

from checks.address_ranges import coverage, span
from checks.azure.properties import MISSING, missing, prop
from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed

SERVER = "azure.sql.server"
DATABASE = "azure.sql.database"
MODERN_TLS = ("1.2", "1.3")


@check(
    "azure.sql.server_auditing_enabled",
    resource=SERVER,
    title="Azure SQL servers audit database events",
    controls={"A.8.15": "logins, queries and changes on every database of the server are "
                        "recorded to a storage account, Log Analytics or Event Hubs"},
    severity="high",
    remediation="Enable auditing on the server (auditingSettings state Enabled) with a Log "
                "Analytics workspace or storage account as destination.",
    needs=("auditing",),
)
def server_auditing_enabled(server: dict[str, Any]) -> Verdict:
    state = prop(server.get("auditing") or {}, "state")
    if state is MISSING:
        return missing("state", under="auditing.properties")
    return passed("server auditing enabled") if state == "Enabled" else failed(
        f"server auditing {state}")


@check(
    "azure.sql.server_firewall_not_open_to_all",
    resource=SERVER,
    title="No Azure SQL server firewall admits every address, or a large part of them",
    controls={"A.8.20": "rules from 0.0.0.0 to 255.255.255.255, alone or together, put the "
                        "server's login endpoint in front of the whole internet"},
    severity="high",
    remediation="Delete the rule and allow only the addresses or virtual networks that need "
                "the server; prefer private endpoints with public network access disabled.",
    needs=("firewall_rules",),
)
def server_firewall_not_open_to_all(server: dict[str, Any]) -> Verdict:
    if prop(server, "publicNetworkAccess") == "Disabled":
        return passed("public network access disabled: firewall rules do not apply")
    rules = server.get("firewall_rules") or []
    ranges: list[Any] = []
    unreadable = []
    for rule in rules:
        found = span(prop(rule, "startIpAddress"), prop(rule, "endIpAddress"))
        if found is None:
            unreadable.append(str(rule.get("name")))
        else:
            ranges += found
    # Rules add up: 0.0.0.0-127.255.255.255 and 128.0.0.0-255.255.255.255 admit everyone.
    union = coverage(ranges)
    if union.broad:
        return failed(f"{len(rules)} firewall rule(s) together admit {union.describe()}")
    if unreadable:
        return errored(f"firewall rule(s) {', '.join(unreadable)} have no readable address "
                       "range")
    return passed(f"{len(rules)} firewall rule(s), together admitting {union.describe()}")


@check(
    "azure.sql.server_min_tls_1_2",
    resource=SERVER,
    title="Azure SQL servers refuse TLS versions older than 1.2",
    controls={"A.8.24": "connections to the server's databases use current TLS, not 1.0 or "
                        "1.1 with their known weaknesses"},
    severity="medium",
    remediation="Set the server's minimal TLS version (minimalTlsVersion) to 1.2.",
)
def server_min_tls_1_2(server: dict[str, Any]) -> Verdict:
    version = prop(server, "minimalTlsVersion")
    if version in MODERN_TLS:
        return passed(f"minimal TLS version {version}")
    if version is MISSING or version == "None":
        return failed("no minimal TLS version: every TLS version is accepted")
    return failed(f"minimal TLS version {version}")


@check(
    "azure.sql.database_transparent_data_encryption_enabled",
    resource=DATABASE,
    title="Azure SQL databases encrypt their storage (TDE)",
    controls={"A.8.24": "the database's files, backups and logs are encrypted at rest"},
    severity="high",
    remediation="Turn on transparent data encryption for the database "
                "(transparentDataEncryption/current state Enabled).",
    needs=("transparent_data_encryption",),
)
def database_transparent_data_encryption_enabled(database: dict[str, Any]) -> Verdict:
    if str(database.get("name", "")).lower() == "master":
        return not_applicable("master holds server metadata; TDE cannot be set on it")
    state = prop(database.get("transparent_data_encryption") or {}, "state")
    if state is MISSING:
        return missing("state", under="transparent_data_encryption.properties")
    return passed("transparent data encryption on") if state == "Enabled" else failed(
        f"transparent data encryption {state}")
