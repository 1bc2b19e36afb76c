"""Reading an ARM resource's `properties`: a setting that is absent is told apart from one
that is off, since only Azure's documented defaults may stand in for a missing value."""

from __future__ import annotations

from typing import Any

from collector.model import Verdict, errored

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
