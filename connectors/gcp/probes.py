"""The IAM permissions the GCP connector needs, each with the one call that exercises it, for
`annexa doctor`; they follow config/gcp/annexa-asset-reader-role.yaml. Each is asked of the
first configured parent (organization, folder or project), for one asset."""

from __future__ import annotations

from connectors.gcp.inventory import Inventory
from connectors.gcp.kinds import PROJECT
from connectors.gcp.settings import Settings
from connectors.probing import Plan, Probe

POLICY = "config/gcp/annexa-asset-reader-role.yaml"


def plan(settings: Settings) -> Plan:
    from connectors.gcp import by_kind

    inventory = Inventory(settings.model_copy(update={"page_size": 1}), None)
    parent = settings.parents[0]
    types = [by_kind(PROJECT).asset_type]

    def first_page(iam: bool) -> object:
        return next(iter(inventory.pages(parent, types, iam=iam)), None)

    return Plan([
        Probe("cloudasset.assets.listResource", f"ListAssets {parent} contentType=RESOURCE",
              lambda: first_page(False), POLICY),
        Probe("cloudasset.assets.listIamPolicy", f"ListAssets {parent} contentType=IAM_POLICY",
              lambda: first_page(True), POLICY),
    ])
