"""Seeds an AWS emulator with a small sample organisation that has realistic gaps.

Each area's seeder records what it planted: check id -> the keys that check must fail on.
Tests compare the collected failures with that record, so every planted gap is accounted for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Client = Callable[[str, str], Any]  # (service, region) -> boto3 client
Planted = dict[str, set[str]]

ACCOUNT = "123456789012"


def plant(planted: Planted, check_id: str, key: str) -> None:
    planted.setdefault(check_id, set()).add(key)


def seed_all(client: Client, regions: list[str]) -> Planted:
    from collector.demo import seed_iam, seed_network, seed_storage

    planted: Planted = {}
    for area in (seed_iam, seed_storage, seed_network):
        area.seed(client, regions, planted)
    return planted
