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

# A union of as many internet addresses as a /8 (1/256 of its family) or more admits a large
# part of the internet: no organisation's own addresses are that many.
BROAD_SHARE = 1 / 256
# Addresses no internet host has (private, shared, loopback, link-local, multicast, reserved):
# a VPC's 10.0.0.0/8 with 192.168.0.0/16 opens nothing to the internet.
NOT_INTERNET = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/3",
    "::1/128", "fc00::/7", "fe80::/10", "ff00::/8",
))


@dataclass(frozen=True)
class Coverage:
    """The union of some ranges: the share of IPv4 and of IPv6 space it covers (0..1), its
    collapsed networks, and the inputs that were not ranges."""

    ipv4: float = 0.0
    ipv6: float = 0.0
    networks: tuple[Network, ...] = ()
    malformed: tuple[str, ...] = field(default=())
    internet_share: float = 0.0  # the larger family's share of its internet addresses

    @property
    def everyone(self) -> bool:
        """The union is a whole address family: every address on the internet."""
        return self.ipv4 >= 1.0 or self.ipv6 >= 1.0

    @property
    def broad(self) -> bool:
        """The union covers a large part of the internet (everyone included)."""
        return self.everyone or self.internet_share > BROAD_SHARE

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
    if isinstance(text, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return text
    if isinstance(text, bool) or not isinstance(text, str | int):
        return None
    value = str(text).strip()
    if not value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def span(first: Any, last: Any) -> list[Network] | None:
    """The networks from address `first` to address `last` (a firewall rule's start and end),
    or None when either is not an address or they are of different families or reversed."""
    try:
        low, high = ipaddress.ip_address(str(first).strip()), ipaddress.ip_address(
            str(last).strip())
        return list(ipaddress.summarize_address_range(low, high))  # type: ignore[type-var]
    except (ValueError, TypeError):
        return None


def coverage(ranges: Iterable[Any]) -> Coverage:
    """The union of `ranges` (CIDR strings or networks; a bare address is a single host)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    malformed: list[str] = []
    for text in ranges:
        net = network(text)
        if net is None:
            # A container is named, not printed: printing a hostile nested one recurses.
            malformed.append(text if isinstance(text, str) else repr(text)
                             if text is None or isinstance(text, int | float)
                             else f"<{type(text).__name__}>")
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
        internet_share=max(_internet_share(merged4, 32), _internet_share(merged6, 128)),
    )


def _internet_share(merged: tuple[Network, ...], bits: int) -> float:
    """The share of the family's internet addresses that `merged` (disjoint networks) holds.
    Two CIDR blocks are nested or apart, so an overlap is the smaller block."""
    outside = [n for n in NOT_INTERNET if n.max_prefixlen == bits]
    held = sum(n.num_addresses for n in merged)
    held -= sum(min(n.num_addresses, o.num_addresses)
                for n in merged for o in outside if n.overlaps(o))
    total = 2**bits - sum(o.num_addresses for o in outside)
    return held / total


def covers_everyone(ranges: Iterable[Any]) -> bool:
    """Whether `ranges` together admit every IPv4 or every IPv6 address."""
    return coverage(ranges).everyone
