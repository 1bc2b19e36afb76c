"""Refused tokens slow their client down: after `limit` refusals from one address within
`window`, every request from it is answered 429 with Retry-After until the oldest of those
refusals leaves the window. Nothing sleeps: the answer is immediate, and the token is not even
looked up, so a guesser learns nothing from a blocked address.

A client is an IPv4 address, or an IPv6 /64 (one end site gets a /64 at least, so counting
single IPv6 addresses would give a guesser 2**64 fresh starts). Memory is bounded: at most
`limit` instants per client and `max_clients` clients, the least recently refused forgotten
first. All calls come from the server's event loop."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

DEFAULT_LIMIT = 10
DEFAULT_WINDOW = timedelta(minutes=5)
MAX_CLIENTS = 10_000


def client_of(address: str) -> str:
    """The client that `address` belongs to, as the limit counts them."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a Unix socket's name): counted as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Blocked:
    client: str
    retry_after: int  # whole seconds, at least 1

    def detail(self) -> str:
        return (f"too many refused tokens from {self.client}: try again in "
                f"{self.retry_after} s")


class BadTokenLimiter:
    def __init__(self, limit: int = DEFAULT_LIMIT, window: timedelta = DEFAULT_WINDOW,
                 max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1 or window <= timedelta(0) or max_clients < 1:
            raise ValueError("the bad-token limit, its window and max_clients must be positive")
        self.limit = limit
        self.window = window.total_seconds()
        self.max_clients = max_clients
        self.clock = clock
        self._refused: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, client: str) -> Blocked | None:
        """Whether `client` must wait, and how long."""
        times = self._recent(client)
        if times is None or len(times) < self.limit:
            return None
        wait = times[0] + self.window - self.clock()
        return Blocked(client, max(1, math.ceil(wait)))

    def refused(self, client: str) -> None:
        """Count one refused token from `client`."""
        times = self._recent(client) or deque(maxlen=self.limit)
        times.append(self.clock())
        self._refused[client] = times
        self._refused.move_to_end(client)
        while len(self._refused) > self.max_clients:
            self._refused.popitem(last=False)

    def clients(self) -> int:
        return len(self._refused)

    def _recent(self, client: str) -> deque[float] | None:
        times = self._refused.get(client)
        if times is None:
            return None
        horizon = self.clock() - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._refused[client]
            return None
        return times
