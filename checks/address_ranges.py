"""How much of the internet a set of IPv4 and IPv6 ranges admits.

One rule names 0.0.0.0/0; another names 0.0.0.0/1 and 128.0.0.0/1, or a hundred smaller
blocks: each admits everyone. Ranges are therefore judged by the share of each address family
they cover together, never by the spelling of one range. Text that is not a range is kept
apart as malformed so that callers can refuse to judge it rather than pass over it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# A union wider than a /8 (1/256 of its family) admits a large part of the internet: no
# organisation's own addresses are that many, while 10.0.0.0/8 is one private network.
BROAD_SHARE = 1 / 256


@dataclass(frozen=True)
class Coverage:
    """The union of some ranges: the share of IPv4 and of IPv6 space it covers (0..1), its
    collapsed networks, and the inputs that were not ranges."""

    ipv4: float = 0.0
    ipv6: float = 0.0
    networks: tuple[Network, ...] = ()
    malformed: tuple[str, ...] = field(default=())

    @property
    def everyone(self) -> bool:
        """The union is a whole address family: every address on the internet."""
        return self.ipv4 >= 1.0 or self.ipv6 >= 1.0

    @property
    def broad(self) -> bool:
        """The union covers a large part of the internet (everyone included)."""
        return self.everyone or max(self.ipv4, self.ipv6) > BROAD_SHARE

    def describe(self) -> str:
        parts = []
        for family, share in (("IPv4", self.ipv4), ("IPv6", self.ipv6)):
            if share >= 1.0:
                parts.append(f"all of {family}")
            elif share > 0:
                parts.append(f"{share:.2%} of {family}")
        return ", ".join(parts) or "no addresses"


def network(text: Any) -> Network | None:
    """`text` as a network (host bits ignored, as AWS and Azure do), or None if it is not
    one."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        return None
    value = str(text).strip()
    if not value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def coverage(ranges: Iterable[Any]) -> Coverage:
    """The union of `ranges` (CIDR strings; a bare address is a single host)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    malformed: list[str] = []
    for text in ranges:
        net = network(text)
        if net is None:
            malformed.append(str(text))
        elif isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    merged4 = tuple(ipaddress.collapse_addresses(v4))
    merged6 = tuple(ipaddress.collapse_addresses(v6))
    return Coverage(
        ipv4=sum(n.num_addresses for n in merged4) / 2**32,
        ipv6=sum(n.num_addresses for n in merged6) / 2**128,
        networks=merged4 + merged6,
        malformed=tuple(malformed),
    )


def covers_everyone(ranges: Iterable[Any]) -> bool:
    """Whether `ranges` together admit every IPv4 or every IPv6 address."""
    return coverage(ranges).everyone
