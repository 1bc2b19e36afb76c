"""Whether address ranges let in the whole internet."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any


# switch to checks.address_ranges once merged
def internet_ranges(ranges: Iterable[Any]) -> list[str]:
    """The ranges that admit every address of IPv4 or IPv6 (0.0.0.0/0, ::/0); a range that is
    not an address range at all raises ValueError, so that the check says `error`."""
    return [str(value) for value in ranges
            if ipaddress.ip_network(str(value).strip(), strict=False).prefixlen == 0]
