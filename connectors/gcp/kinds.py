"""What the GCP connector collects, as data: each resource kind is one Cloud Asset Inventory
asset type, and some also have their IAM policy read. Adding a type is one line in KINDS."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    kind: str
    asset_type: str
    iam: bool = False  # its IAM policy is listed too (content type IAM_POLICY) and joined to it


PROJECT = "gcp.project"

KINDS: tuple[Kind, ...] = (
    Kind(PROJECT, "cloudresourcemanager.googleapis.com/Project", iam=True),
    Kind("gcp.storage.bucket", "storage.googleapis.com/Bucket", iam=True),
    Kind("gcp.compute.firewall", "compute.googleapis.com/Firewall"),
    Kind("gcp.compute.network", "compute.googleapis.com/Network"),
    Kind("gcp.compute.subnetwork", "compute.googleapis.com/Subnetwork"),
    Kind("gcp.compute.instance", "compute.googleapis.com/Instance"),
    Kind("gcp.sql.instance", "sqladmin.googleapis.com/Instance"),
    Kind("gcp.kms.crypto_key", "cloudkms.googleapis.com/CryptoKey", iam=True),
    Kind("gcp.iam.service_account_key", "iam.googleapis.com/ServiceAccountKey"),
    Kind("gcp.bigquery.dataset", "bigquery.googleapis.com/Dataset"),
    Kind("gcp.dns.managed_zone", "dns.googleapis.com/ManagedZone"),
    Kind("gcp.container.cluster", "container.googleapis.com/Cluster"),
)

# Organizations and folders pass their audit configs down to the projects below them: their
# IAM policies are listed for that, and are no resources of their own.
ANCESTOR_TYPES = ("cloudresourcemanager.googleapis.com/Organization",
                  "cloudresourcemanager.googleapis.com/Folder")

ALL_KINDS: tuple[str, ...] = tuple(k.kind for k in KINDS)


def by_type() -> dict[str, Kind]:
    out: dict[str, Kind] = {}
    for kind in KINDS:
        if kind.asset_type in out:
            raise ValueError(f"asset type {kind.asset_type} is declared for two kinds")
        out[kind.asset_type] = kind
    return out
