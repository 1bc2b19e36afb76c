"""Key Vaults: keys and secrets cannot be destroyed for good before their retention ends, and
the vault answers only the networks it names."""

from __future__ import annotations

from typing import Any

from checks.azure.properties import default_network_denied, prop
from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "azure.keyvault.vault"


@check(
    "azure.keyvault.vault_purge_protection_enabled",
    resource=KIND,
    title="Key Vaults have purge protection",
    controls={"A.8.24": "cryptographic keys deleted by mistake or by an attacker stay "
                        "recoverable until the retention period ends, so data encrypted with "
                        "them is not lost"},
    severity="high",
    remediation="Enable purge protection on the vault (enablePurgeProtection); it cannot be "
                "turned off again.",
)
def vault_purge_protection_enabled(vault: dict[str, Any]) -> Verdict:
    # ARM leaves the property out of vaults that never enabled it.
    if prop(vault, "enablePurgeProtection") is True:
        return passed("purge protection on")
    return failed("purge protection off: deleted keys and secrets can be purged at once")


@check(
    "azure.keyvault.vault_default_network_access_denied",
    resource=KIND,
    title="Key Vaults deny network access unless a rule allows it",
    controls={"A.8.20": "the vault's endpoint answers only the networks and addresses its "
                        "firewall names, not the whole internet"},
    severity="medium",
    remediation="Set the vault's network ACLs' default action to Deny and allow the networks "
                "that need it, or disable public network access and use a private endpoint.",
)
def vault_default_network_access_denied(vault: dict[str, Any]) -> Verdict:
    return default_network_denied(vault)
