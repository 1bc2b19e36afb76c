"""Storage accounts: encrypted in transit, closed to anonymous readers and to every network by
default, authenticated by identities rather than account keys, and able to bring back deleted
blobs."""

from __future__ import annotations

from typing import Any

from checks.azure.properties import MISSING, default_network_denied, missing, prop
from checks.registry import check
from collector.model import Verdict, failed, not_applicable, passed

KIND = "azure.storage.account"
MODERN_TLS = ("TLS1_2", "TLS1_3")


def _file_shares_only(account: dict[str, Any]) -> bool:
    return account.get("kind") == "FileStorage"


@check(
    "azure.storage.account_https_only",
    resource=KIND,
    title="Storage accounts accept HTTPS requests only",
    controls={"A.8.24": "blob, file, queue and table data travel to and from the account "
                        "encrypted, never over plain HTTP"},
    severity="high",
    remediation="Turn on 'Secure transfer required' (supportsHttpsTrafficOnly) on the account.",
)
def account_https_only(account: dict[str, Any]) -> Verdict:
    https_only = prop(account, "supportsHttpsTrafficOnly")
    if https_only is MISSING:
        return missing("supportsHttpsTrafficOnly")
    return passed("secure transfer required") if https_only is True else failed(
        "plain HTTP requests are accepted")


@check(
    "azure.storage.account_min_tls_1_2",
    resource=KIND,
    title="Storage accounts refuse TLS versions older than 1.2",
    controls={"A.8.24": "TLS 1.0 and 1.1 have known weaknesses: refusing them keeps data in "
                        "transit under current cryptography"},
    severity="medium",
    remediation="Set the account's minimum TLS version (minimumTlsVersion) to TLS1_2.",
)
def account_min_tls_1_2(account: dict[str, Any]) -> Verdict:
    version = prop(account, "minimumTlsVersion")
    if version is MISSING:
        return failed("minimum TLS version not set, so TLS 1.0 is accepted")
    if version in MODERN_TLS:
        return passed(f"minimum TLS version {version}")
    return failed(f"minimum TLS version {version}")


@check(
    "azure.storage.account_blob_anonymous_access_disabled",
    resource=KIND,
    title="Storage accounts forbid anonymous read access to blobs",
    controls={"A.8.3": "with anonymous access disallowed, no container of the account can be "
                       "opened to readers who present no credential at all"},
    severity="high",
    remediation="Set 'Allow Blob anonymous access' (allowBlobPublicAccess) to false on the "
                "account.",
)
def account_blob_anonymous_access_disabled(account: dict[str, Any]) -> Verdict:
    if _file_shares_only(account):
        return not_applicable("a file-share account has no blob containers")
    allowed = prop(account, "allowBlobPublicAccess")
    if allowed is False:
        return passed("anonymous blob access disallowed")
    if allowed is MISSING:
        return failed("allowBlobPublicAccess never set: containers may be made public")
    return failed("containers may be opened to anonymous readers")


@check(
    "azure.storage.account_default_network_access_denied",
    resource=KIND,
    title="Storage accounts deny network access unless a rule allows it",
    controls={"A.8.20": "the account's endpoints answer only the networks, addresses and "
                        "services its firewall names, not the whole internet"},
    severity="medium",
    remediation="Set the account's network rules' default action to Deny and allow the "
                "virtual networks and addresses that need the account (or use private "
                "endpoints and disable public network access).",
)
def account_default_network_access_denied(account: dict[str, Any]) -> Verdict:
    return default_network_denied(account)


@check(
    "azure.storage.account_shared_key_access_disabled",
    resource=KIND,
    title="Storage accounts refuse requests signed with the account keys",
    controls={"A.8.5": "requests must then be authenticated as a Microsoft Entra identity, not "
                       "with account keys that never expire and name no one"},
    severity="medium",
    remediation="Set 'Allow storage account key access' (allowSharedKeyAccess) to false once "
                "clients use Microsoft Entra ID.",
)
def account_shared_key_access_disabled(account: dict[str, Any]) -> Verdict:
    allowed = prop(account, "allowSharedKeyAccess")
    if allowed is False:
        return passed("account key access disallowed")
    # Azure documents a missing value as allowed.
    return failed("requests signed with the account keys are accepted")


@check(
    "azure.storage.account_blob_soft_delete_enabled",
    resource=KIND,
    title="Storage accounts keep deleted blobs for a retention period",
    controls={"A.5.33": "blobs deleted or overwritten by mistake or malice can be restored "
                        "during the retention period"},
    severity="medium",
    remediation="Enable soft delete for blobs in the account's data protection settings "
                "(deleteRetentionPolicy), for at least 7 days.",
    needs=("blob_service",),
)
def account_blob_soft_delete_enabled(account: dict[str, Any]) -> Verdict:
    if _file_shares_only(account):
        return not_applicable("a file-share account has no blob service")
    policy = prop(account.get("blob_service") or {}, "deleteRetentionPolicy")
    if policy is MISSING:
        return missing("deleteRetentionPolicy", under="blob_service.properties")
    if policy.get("enabled") is True:
        return passed(f"deleted blobs kept {policy.get('days')} days")
    return failed("blob soft delete is off")
