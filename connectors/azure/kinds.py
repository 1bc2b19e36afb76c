"""What the Azure connector collects, as data: each resource kind is read from one Resource
Graph table by its resource type(s), and some need ARM reads of what Resource Graph does not
hold. Adding a type is one line in KINDS.

Types are written as ARM spells them; the query matches them with `in~`, since Resource Graph
returns the `type` column in lower case and KQL's `in` is case-sensitive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _always(_row: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Child:
    """One ARM GET per resource, at the resource's id followed by `path`; its answer is kept
    in the resource's data under `name` (a listing: its items, gathered across pages)."""

    name: str
    path: str
    api_version: str
    listing: bool = False
    applies: Callable[[dict[str, Any]], bool] = _always


@dataclass(frozen=True)
class Kind:
    kind: str
    table: str
    types: tuple[str, ...]
    children: tuple[Child, ...] = ()


def _has_blob_service(account: dict[str, Any]) -> bool:
    # Premium file-share accounts serve files only: they have no blob service to read.
    return account.get("kind") != "FileStorage"


def _not_master(database: dict[str, Any]) -> bool:
    # master holds server metadata; TDE cannot be set on it, so there is nothing to read.
    return str(database.get("name", "")).lower() != "master"


KINDS: tuple[Kind, ...] = (
    Kind("azure.storage.account", "Resources", ("Microsoft.Storage/storageAccounts",),
         (Child("blob_service", "/blobServices/default", "2023-05-01",
                applies=_has_blob_service),)),
    Kind("azure.keyvault.vault", "Resources", ("Microsoft.KeyVault/vaults",)),
    Kind("azure.network.security_group", "Resources",
         ("Microsoft.Network/networkSecurityGroups",)),
    Kind("azure.sql.server", "Resources", ("Microsoft.Sql/servers",),
         (Child("auditing", "/auditingSettings/default", "2021-11-01"),
          Child("firewall_rules", "/firewallRules", "2021-11-01", listing=True))),
    Kind("azure.sql.database", "Resources", ("Microsoft.Sql/servers/databases",),
         (Child("transparent_data_encryption", "/transparentDataEncryption/current",
                "2021-11-01", applies=_not_master),)),
    Kind("azure.postgresql.flexible_server", "Resources",
         ("Microsoft.DBforPostgreSQL/flexibleServers",),
         (Child("require_secure_transport", "/configurations/require_secure_transport",
                "2022-12-01"),)),
    Kind("azure.web.site", "Resources", ("Microsoft.Web/sites",),
         (Child("site_config", "/config/web", "2022-09-01"),)),
    Kind("azure.authorization.role_assignment", "AuthorizationResources",
         ("Microsoft.Authorization/roleAssignments",)),
)

# The subscription itself, as GET /subscriptions lists it, with its subscription-wide settings.
SUBSCRIPTION = Kind("azure.subscription", "", (), (
    Child("diagnostic_settings", "/providers/Microsoft.Insights/diagnosticSettings",
          "2021-05-01-preview", listing=True),
    Child("defender_pricings", "/providers/Microsoft.Security/pricings", "2024-01-01",
          listing=True),
    Child("security_contacts", "/providers/Microsoft.Security/securityContacts",
          "2023-12-01-preview", listing=True),
))

ALL_KINDS: tuple[str, ...] = (SUBSCRIPTION.kind, *(k.kind for k in KINDS))


def tables() -> dict[str, list[Kind]]:
    """Resource Graph table -> the kinds read from it, in declaration order."""
    out: dict[str, list[Kind]] = {}
    for kind in KINDS:
        out.setdefault(kind.table, []).append(kind)
    return out


def by_type() -> dict[str, Kind]:
    """Lower-case resource type -> its kind (Resource Graph's `type` column is lower case)."""
    out: dict[str, Kind] = {}
    for kind in KINDS:
        for type_ in kind.types:
            if type_.lower() in out:
                raise ValueError(f"resource type {type_} is declared for two kinds")
            out[type_.lower()] = kind
    return out
