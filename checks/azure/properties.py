"""Reading an ARM resource's `properties`: a setting that is absent is told apart from one
that is off, since only Azure's documented defaults may stand in for a missing value."""

from __future__ import annotations

from typing import Any

from collector.model import Verdict, errored, failed, passed

MISSING: Any = object()


def prop(resource: dict[str, Any], *path: str) -> Any:
    """resource["properties"][path[0]][path[1]]..., or MISSING where any level is absent."""
    node: Any = resource.get("properties")
    for name in path:
        if not isinstance(node, dict) or name not in node:
            return MISSING
        node = node[name]
    return node


def missing(*path: str, under: str = "properties") -> Verdict:
    return errored(f"{under}.{'.'.join(path)} is not in the collected data")


def default_network_denied(resource: dict[str, Any]) -> Verdict:
    """Storage accounts and Key Vaults share one network model: public access off, or
    `networkAcls` whose default action denies what no rule allows (absent: all allowed)."""
    if prop(resource, "publicNetworkAccess") == "Disabled":
        return passed("public network access disabled")
    action = prop(resource, "networkAcls", "defaultAction")
    if action == "Deny":
        return passed("network rules deny by default")
    if action is MISSING:
        return failed("no network rules: every network is allowed")
    return failed(f"network rules' default action is {action}")
