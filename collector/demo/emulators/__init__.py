"""Loopback HTTPS emulators of the providers' APIs, which `annexa demo` serves and the tests
share: `server` is the common server (TLS, routing, faults, throttling, tokens), and each
provider module installs its routes on it and can seed a sample organisation with gaps.

A provider module that the demo uses has `start_demo(workdir) -> DemoSource`, and is named in
DEMOS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Modules whose start_demo() the demo calls, in this order.
DEMOS: list[str] = ["collector.demo.emulators.google_workspace", "collector.demo.emulators.azure",
                    "collector.demo.emulators.entra", "collector.demo.emulators.github",
                    "collector.demo.emulators.gcp", "collector.demo.emulators.okta"]

# The demo's Microsoft tenant and app registration, shared by its Azure and Entra emulators
# (azure-identity reads one set of AZURE_* variables per process).
DEMO_TENANT = "00000000-0000-0000-0000-000000000001"
DEMO_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
DEMO_CLIENT_SECRET = "annexa-demo-secret"


@dataclass
class DemoSource:
    """A started emulator seeded with a sample organisation: the source to configure for it,
    the environment its credentials need, and what was planted (check id -> failing keys)."""

    source: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    planted: dict[str, set[str]] = field(default_factory=dict)
    stop: Callable[[], None] = lambda: None
