"""A sample Azure tenant for the emulator: resources as Resource Graph and ARM describe them,
built one at a time (well configured unless told otherwise), and `seed()`, which plants one
gap per resource beside well-configured twins in two subscriptions, `prod` and `dev`."""

from __future__ import annotations

import uuid
from typing import Any

from collector.demo.emulators.azure import OWNER, READER, Azure

PROD = "11111111-1111-1111-1111-111111111111"
DEV = "22222222-2222-2222-2222-222222222222"
CREATED = "2024-03-04T09:30:00.0000000Z"
ACTIVITY_LOG_CATEGORIES = ("Administrative", "Security", "ServiceHealth", "Alert",
                           "Recommendation", "Policy", "Autoscale", "ResourceHealth")
# Defender for Cloud plans as a 2024-01-01 pricings list names them; the retired ones carry
# `deprecated` and their successors.
CURRENT_PLANS = ("VirtualMachines", "SqlServers", "AppServices", "StorageAccounts",
                 "SqlServerVirtualMachines", "KeyVaults", "Arm", "OpenSourceRelationalDatabases",
                 "CosmosDbs", "Containers", "CloudPosture", "Api")
RETIRED_PLANS = {"KubernetesService": ["Containers"], "ContainerRegistry": ["Containers"],
                 "Dns": ["VirtualMachines"]}


def guid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def storage_account(azure: Azure, sub: str, name: str, group: str = "data", *,
                    kind: str = "StorageV2", soft_delete: bool = True,
                    **overrides: Any) -> str:
    properties = {
        "keyCreationTime": {"key1": CREATED, "key2": CREATED},
        "privateEndpointConnections": [],
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "isHnsEnabled": False,
        "networkAcls": {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [],
                        "defaultAction": "Deny"},
        "supportsHttpsTrafficOnly": True,
        "encryption": {"requireInfrastructureEncryption": False, "keySource": "Microsoft.Storage",
                       "services": {s: {"keyType": "Account", "enabled": True,
                                        "lastEnabledTime": CREATED} for s in ("blob", "file")}},
        "accessTier": "Hot",
        "provisioningState": "Succeeded",
        "creationTime": CREATED,
        "primaryEndpoints": {s: f"https://{name}.{s}.core.windows.net/"
                             for s in ("blob", "file", "queue", "table")},
        "primaryLocation": "westeurope",
        "statusOfPrimary": "available",
        **overrides,
    }
    account = azure.resource(sub, group, "Microsoft.Storage/storageAccounts", name, properties,
                             kind=kind, sku={"name": "Standard_LRS", "tier": "Standard"})
    if kind != "FileStorage":
        retention = ({"allowPermanentDelete": False, "enabled": True, "days": 14} if soft_delete
                     else {"allowPermanentDelete": False, "enabled": False})
        azure.answer(f"{account}/blobServices/default", {
            "id": f"{account}/blobServices/default", "name": "default",
            "type": "Microsoft.Storage/storageAccounts/blobServices",
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {"cors": {"corsRules": []}, "deleteRetentionPolicy": retention,
                           "containerDeleteRetentionPolicy": {"enabled": True, "days": 7},
                           "isVersioningEnabled": False}})
    return account


def key_vault(azure: Azure, sub: str, name: str, group: str = "security", *,
              purge_protection: bool = True, default_action: str = "Deny") -> str:
    properties: dict[str, Any] = {
        "sku": {"family": "A", "name": "standard"}, "tenantId": azure.tenant,
        "accessPolicies": [], "enabledForDeployment": False,
        "enabledForDiskEncryption": False, "enabledForTemplateDeployment": False,
        "enableSoftDelete": True, "softDeleteRetentionInDays": 90,
        "enableRbacAuthorization": True, "vaultUri": f"https://{name}.vault.azure.net/",
        "provisioningState": "Succeeded", "publicNetworkAccess": "Enabled",
        "networkAcls": {"bypass": "AzureServices", "defaultAction": default_action,
                        "ipRules": [], "virtualNetworkRules": []},
    }
    if purge_protection:  # ARM leaves the property out until it is enabled
        properties["enablePurgeProtection"] = True
    return azure.resource(sub, group, "Microsoft.KeyVault/vaults", name, properties)


def nsg_rule(name: str, priority: int, port: str, source: str | list[str], *,
             access: str = "Allow", protocol: str = "Tcp",
             direction: str = "Inbound") -> dict[str, Any]:
    many = isinstance(source, list)
    return {"name": name, "etag": 'W/"00000000-0000-0000-0000-000000000000"',
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": {
                "provisioningState": "Succeeded", "protocol": protocol,
                "sourcePortRange": "*", "destinationPortRange": port,
                "sourceAddressPrefix": None if many else source,
                "sourceAddressPrefixes": source if many else [],
                "destinationAddressPrefix": "*", "access": access, "priority": priority,
                "direction": direction, "sourcePortRanges": [], "destinationPortRanges": [],
                "destinationAddressPrefixes": []}}


def _default_rules(nsg: str) -> list[dict[str, Any]]:
    defaults = [("AllowVnetInBound", 65000, "VirtualNetwork", "Allow", "Inbound"),
                ("AllowAzureLoadBalancerInBound", 65001, "AzureLoadBalancer", "Allow",
                 "Inbound"),
                ("DenyAllInBound", 65500, "*", "Deny", "Inbound"),
                ("AllowVnetOutBound", 65000, "VirtualNetwork", "Allow", "Outbound"),
                ("AllowInternetOutBound", 65001, "*", "Allow", "Outbound"),
                ("DenyAllOutBound", 65500, "*", "Deny", "Outbound")]
    rules = []
    for name, priority, source, access, direction in defaults:
        rule = nsg_rule(name, priority, "*", source, access=access, protocol="*",
                        direction=direction)
        rule["id"] = f"{nsg}/defaultSecurityRules/{name}"
        rules.append(rule)
    return rules


def security_group(azure: Azure, sub: str, name: str, rules: list[dict[str, Any]],
                   group: str = "network") -> str:
    nsg = azure.resource(sub, group, "Microsoft.Network/networkSecurityGroups", name,
                         {"resourceGuid": guid(name), "provisioningState": "Succeeded",
                          "securityRules": [], "defaultSecurityRules": []})
    properties = azure.row(nsg)["properties"]
    for rule in rules:
        rule["id"] = f"{nsg}/securityRules/{rule['name']}"
    properties["securityRules"] = rules
    properties["defaultSecurityRules"] = _default_rules(nsg)
    return nsg


def sql_server(azure: Azure, sub: str, name: str, group: str = "data", *,
               auditing: str = "Enabled", tls: str = "1.2",
               firewall: tuple[tuple[str, str, str], ...] = (
                   ("office", "203.0.113.0", "203.0.113.255"),
                   ("AllowAllWindowsAzureIps", "0.0.0.0", "0.0.0.0"))) -> str:
    server = azure.resource(sub, group, "Microsoft.Sql/servers", name, {
        "administratorLogin": "sqladmin", "version": "12.0", "state": "Ready",
        "fullyQualifiedDomainName": f"{name}.database.windows.net",
        "privateEndpointConnections": [], "minimalTlsVersion": tls,
        "publicNetworkAccess": "Enabled", "restrictOutboundNetworkAccess": "Disabled"},
        kind="v12.0")
    azure.answer(f"{server}/auditingSettings/default", {
        "id": f"{server}/auditingSettings/Default", "name": "Default",
        "type": "Microsoft.Sql/servers/auditingSettings",
        "properties": {"retentionDays": 90 if auditing == "Enabled" else 0,
                       "auditActionsAndGroups": ["SUCCESSFUL_DATABASE_AUTHENTICATION_GROUP",
                                                 "FAILED_DATABASE_AUTHENTICATION_GROUP",
                                                 "BATCH_COMPLETED_GROUP"],
                       "isStorageSecondaryKeyInUse": False,
                       "isAzureMonitorTargetEnabled": auditing == "Enabled",
                       "isManagedIdentityInUse": False, "state": auditing,
                       "storageEndpoint": "",
                       "storageAccountSubscriptionId": "00000000-0000-0000-0000-000000000000"}})
    azure.answer(f"{server}/firewallRules", {"value": [
        {"id": f"{server}/firewallRules/{rule}", "name": rule,
         "type": "Microsoft.Sql/servers/firewallRules",
         "properties": {"startIpAddress": start, "endIpAddress": end}}
        for rule, start, end in firewall]})
    sql_database(azure, sub, server, "master", tde=None)
    return server


def sql_database(azure: Azure, sub: str, server: str, name: str,
                 tde: str | None = "Enabled") -> str:
    system = name == "master"
    properties = {"collation": "SQL_Latin1_General_CP1_CI_AS", "maxSizeBytes": 34359738368,
                  "status": "Online", "databaseId": guid(f"{server}/{name}"),
                  "creationDate": CREATED,
                  "currentServiceObjectiveName": "System" if system else "GP_S_Gen5_2",
                  "requestedBackupStorageRedundancy": "Geo", "zoneRedundant": False}
    sku = ({"name": "System", "tier": "System"} if system else
           {"name": "GP_S_Gen5", "tier": "GeneralPurpose", "family": "Gen5", "capacity": 2})
    database = azure.resource(
        sub, server.split("/")[4], "Microsoft.Sql/servers/databases", name, properties,
        kind="v12.0,system" if system else "v12.0,user,vcore,serverless", sku=sku,
        parent=server)
    if tde is not None:
        azure.answer(f"{database}/transparentDataEncryption/current", {
            "id": f"{database}/transparentDataEncryption/Current", "name": "Current",
            "type": "Microsoft.Sql/servers/databases/transparentDataEncryption",
            "properties": {"state": tde}})
    return database


def postgres_server(azure: Azure, sub: str, name: str, group: str = "data", *,
                    secure_transport: str = "on") -> str:
    server = azure.resource(sub, group, "Microsoft.DBforPostgreSQL/flexibleServers", name, {
        "fullyQualifiedDomainName": f"{name}.postgres.database.azure.com", "version": "16",
        "state": "Ready", "administratorLogin": "pgadmin",
        "storage": {"storageSizeGB": 128, "autoGrow": "Disabled", "tier": "P10"},
        "authConfig": {"activeDirectoryAuth": "Enabled", "passwordAuth": "Disabled",
                       "tenantId": azure.tenant},
        "network": {"publicNetworkAccess": "Disabled"},
        "highAvailability": {"mode": "Disabled"},
        "backup": {"backupRetentionDays": 7, "geoRedundantBackup": "Disabled"}},
        sku={"name": "Standard_D2ds_v4", "tier": "GeneralPurpose"})
    azure.answer(f"{server}/configurations/require_secure_transport", {
        "id": f"{server}/configurations/require_secure_transport",
        "name": "require_secure_transport",
        "type": "Microsoft.DBforPostgreSQL/flexibleServers/configurations",
        "properties": {
            "value": secure_transport,
            "description": "Whether client connections to the server are required to use some "
                           "form of secure transport.",
            "defaultValue": "on", "dataType": "Boolean", "allowedValues": "on,off",
            "source": "system-default" if secure_transport == "on" else "user-override",
            "isDynamicConfig": True, "isReadOnly": False, "isConfigPendingRestart": False,
            "documentationLink": "https://www.postgresql.org/docs/16/runtime-config-"
                                 "connection.html"}})
    return server


def web_app(azure: Azure, sub: str, name: str, group: str = "web", *, https_only: bool = True,
            tls: str = "1.2", ftps: str = "FtpsOnly") -> str:
    site = azure.resource(sub, group, "Microsoft.Web/sites", name, {
        "name": name, "state": "Running", "hostNames": [f"{name}.azurewebsites.net"],
        "enabled": True, "httpsOnly": https_only,
        "serverFarmId": f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Web/"
                        "serverfarms/plan",
        "defaultHostName": f"{name}.azurewebsites.net", "clientCertEnabled": False,
        "publicNetworkAccess": "Enabled",
        # Resource Graph's copy of the site configuration leaves these empty.
        "siteConfig": {"minTlsVersion": None, "ftpsState": None, "numberOfWorkers": 1}},
        kind="app,linux")
    azure.answer(f"{site}/config/web", {
        "id": f"{site}/config/web", "name": name, "type": "Microsoft.Web/sites/config",
        "location": "West Europe",
        "properties": {"numberOfWorkers": 1, "linuxFxVersion": "PYTHON|3.11",
                       "http20Enabled": True, "minTlsVersion": tls, "scmMinTlsVersion": "1.2",
                       "ftpsState": ftps, "alwaysOn": True, "remoteDebuggingEnabled": False,
                       "scmType": "None"}})
    return site


def subscription_settings(azure: Azure, sub: str, *, standard: tuple[str, ...] = CURRENT_PLANS,
                          contact: bool = True,
                          exported: tuple[str, ...] = ACTIVITY_LOG_CATEGORIES) -> None:
    """The subscription's Defender plans (Standard for those in `standard`), its security
    contact, and a diagnostic setting exporting `exported` (none when empty)."""
    scope = f"/subscriptions/{sub}"
    pricings = [{"id": f"{scope}/providers/Microsoft.Security/pricings/{plan}", "name": plan,
                 "type": "Microsoft.Security/pricings",
                 "properties": {"pricingTier": "Standard" if plan in standard else "Free",
                                "freeTrialRemainingTime": "PT0S", "enforce": "False",
                                **({"enablementTime": CREATED} if plan in standard else {})}}
                for plan in CURRENT_PLANS]
    pricings += [{"id": f"{scope}/providers/Microsoft.Security/pricings/{plan}", "name": plan,
                  "type": "Microsoft.Security/pricings",
                  "properties": {"pricingTier": "Free", "freeTrialRemainingTime": "PT0S",
                                 "enforce": "False", "deprecated": True,
                                 "replacedBy": successors}}
                 for plan, successors in RETIRED_PLANS.items()]
    azure.answer(f"{scope}/providers/Microsoft.Security/pricings", {"value": pricings})
    contacts = [{"id": f"{scope}/providers/Microsoft.Security/securityContacts/default",
                 "name": "default", "type": "Microsoft.Security/securityContacts",
                 "properties": {"emails": "secops@example.com", "isEnabled": True,
                                "notificationsByRole": {"roles": ["Owner"], "state": "On"},
                                "notificationsSources": [
                                    {"sourceType": "Alert", "minimalSeverity": "Medium"},
                                    {"sourceType": "AttackPath",
                                     "minimalRiskLevel": "Critical"}],
                                "phone": ""}}] if contact else []
    azure.answer(f"{scope}/providers/Microsoft.Security/securityContacts", {"value": contacts})
    settings = [{"id": f"{scope}/providers/microsoft.insights/diagnosticSettings/activity-log",
                 "type": "Microsoft.Insights/diagnosticSettings", "name": "activity-log",
                 "location": "global",
                 "properties": {
                     "workspaceId": f"{scope}/resourceGroups/monitoring/providers/"
                                    "Microsoft.OperationalInsights/workspaces/central",
                     "logs": [{"category": c, "enabled": c in exported}
                              for c in ACTIVITY_LOG_CATEGORIES]}}] if exported else []
    azure.answer(f"{scope}/providers/Microsoft.Insights/diagnosticSettings", {"value": settings})


def seed(azure: Azure) -> dict[str, set[str]]:
    """The sample tenant; returns check id -> the keys that must fail it."""
    planted: dict[str, set[str]] = {}

    def gap(check: str, key: str) -> str:
        planted.setdefault(f"azure.{check}", set()).add(key)
        return key

    azure.subscription(PROD, "acme-prod")
    dev = azure.subscription(DEV, "acme-dev")

    storage_account(azure, PROD, "acmeprodlogs")
    storage_account(azure, PROD, "acmeprodfiles", kind="FileStorage")
    gap("storage.account_https_only",
        storage_account(azure, PROD, "acmeprodhttp", supportsHttpsTrafficOnly=False))
    gap("storage.account_min_tls_1_2",
        storage_account(azure, PROD, "acmeprodtls10", minimumTlsVersion="TLS1_0"))
    gap("storage.account_blob_anonymous_access_disabled",
        storage_account(azure, PROD, "acmeprodpublic", allowBlobPublicAccess=True))
    gap("storage.account_default_network_access_denied",
        storage_account(azure, PROD, "acmeprodopen", networkAcls={
            "bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [],
            "defaultAction": "Allow"}))
    gap("storage.account_shared_key_access_disabled",
        storage_account(azure, PROD, "acmeprodkeys", allowSharedKeyAccess=True))
    gap("storage.account_blob_soft_delete_enabled",
        storage_account(azure, PROD, "acmeprodnosoft", soft_delete=False))
    storage_account(azure, DEV, "acmedevscratch", group="scratch")

    key_vault(azure, PROD, "acme-prod-kv")
    gap("keyvault.vault_purge_protection_enabled",
        key_vault(azure, PROD, "acme-prod-kv-nopurge", purge_protection=False))
    gap("keyvault.vault_default_network_access_denied",
        key_vault(azure, PROD, "acme-prod-kv-open", default_action="Allow"))

    security_group(azure, PROD, "nsg-prod-web", [
        nsg_rule("AllowHttpsFromInternet", 100, "443", "Internet"),
        nsg_rule("AllowSshFromOffice", 110, "22", "203.0.113.0/24"),
        nsg_rule("DenyRdpFromInternet", 120, "3389", "*", access="Deny"),
        # Shadowed by the deny above, as Azure applies rules in priority order.
        nsg_rule("AllowRdpLegacy", 130, "3389", "*"),
    ])
    gap("network.nsg_ssh_closed_to_internet", security_group(
        azure, PROD, "nsg-prod-ssh", [nsg_rule("AllowSsh", 100, "22", "Internet")]))
    gap("network.nsg_rdp_closed_to_internet", security_group(
        azure, PROD, "nsg-prod-rdp", [nsg_rule("AllowRdpRange", 200, "3380-3390",
                                               ["10.0.0.0/8", "0.0.0.0/0"])]))
    anything = security_group(azure, PROD, "nsg-prod-any", [
        nsg_rule("AllowAll", 100, "*", "*", protocol="*")])
    for check in ("network.nsg_all_ports_closed_to_internet", "network.nsg_ssh_closed_to_internet",
                  "network.nsg_rdp_closed_to_internet"):
        gap(check, anything)
    security_group(azure, DEV, "nsg-dev", [nsg_rule("AllowSshFromVnet", 100, "22",
                                                    "VirtualNetwork")], group="scratch")

    good_sql = sql_server(azure, PROD, "acme-prod-sql")
    sql_database(azure, PROD, good_sql, "orders")
    gap("sql.database_transparent_data_encryption_enabled",
        sql_database(azure, PROD, good_sql, "legacy", tde="Disabled"))
    gap("sql.server_auditing_enabled",
        sql_server(azure, PROD, "acme-prod-sql-noaudit", auditing="Disabled"))
    gap("sql.server_firewall_not_open_to_all", sql_server(
        azure, PROD, "acme-prod-sql-open",
        firewall=(("AllowAll", "0.0.0.0", "255.255.255.255"),)))
    gap("sql.server_min_tls_1_2", sql_server(azure, PROD, "acme-prod-sql-tls", tls="1.0"))

    postgres_server(azure, PROD, "acme-prod-pg")
    gap("postgresql.flexible_server_requires_secure_transport",
        postgres_server(azure, PROD, "acme-prod-pg-plain", secure_transport="off"))

    web_app(azure, PROD, "acme-prod-web")
    gap("web.app_https_only", web_app(azure, PROD, "acme-prod-web-http", https_only=False))
    gap("web.app_min_tls_1_2", web_app(azure, PROD, "acme-prod-web-tls", tls="1.0"))
    gap("web.app_plain_ftp_disabled", web_app(azure, PROD, "acme-prod-web-ftp",
                                              ftps="AllAllowed"))

    subscription_settings(azure, PROD)
    subscription_settings(azure, DEV, standard=("CloudPosture",), contact=False,
                          exported=("Administrative",))
    for check in ("defender.servers_plan_standard", "defender.storage_plan_standard",
                  "defender.sql_plan_standard", "defender.keyvault_plan_standard",
                  "defender.security_contact_notified_of_alerts",
                  "monitor.activity_log_exported",
                  "authorization.subscription_owners_at_most_three"):
        gap(check, dev)

    for i in range(2):
        azure.role_assignment(PROD, OWNER, guid(f"prod-owner-{i}"))
    azure.role_assignment(PROD, READER, guid("annexa-collector"), "ServicePrincipal")
    for i in range(4):
        azure.role_assignment(DEV, OWNER, guid(f"dev-owner-{i}"))
    return planted
