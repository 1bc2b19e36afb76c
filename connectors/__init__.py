"""Connectors: one per source system. They fetch and normalise; they never judge.

A connector module exposes `Settings` (a pydantic model of its kind-specific options) and
`collect(settings) -> Iterator[Resource | CollectionError]`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "aws": "connectors.aws",
    "google_workspace": "connectors.google_workspace",
    "azure": "connectors.azure",
    "okta": "connectors.okta",
    "entra": "connectors.entra",
    "github": "connectors.github",
    "gcp": "connectors.gcp",
}


def connector(kind: str) -> ModuleType:
    try:
        return importlib.import_module(KINDS[kind])
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise ValueError(f"unknown source kind {kind!r} (known: {known})") from None
