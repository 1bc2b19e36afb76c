"""Network security groups: what their inbound rules let in from the internet.

Rules are read in priority order, as Azure applies them: the first rule that matches a packet
decides. A rule decides for traffic from the internet when its source is the internet itself
(`*`, `Internet`, `Any`) or address prefixes that together cover it (checks/address_ranges.py);
rules naming narrower sources neither expose a port to the internet nor close it to the
internet, so they are passed over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.address_ranges import coverage, network
from checks.azure.properties import MISSING, missing, prop
from checks.registry import check
from collector.model import Verdict, failed, passed

KIND = "azure.network.security_group"
INTERNET_TAGS = frozenset({"*", "any", "internet", "0.0.0.0", "::"})
TCP = ("tcp",)
PORTED = ("tcp", "udp")  # the protocols that have ports; `*` rules apply to both
HIGHEST_PORT = 65535


def _sources(rule: dict[str, Any]) -> list[str]:
    return [str(s).strip() for s in
            [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])] if s]


def _from_internet(rule: dict[str, Any], *, allowing: bool) -> bool:
    """Whether the rule decides for traffic from the internet: an internet tag, or address
    prefixes that together cover every address (a Deny) or a large part of them (an Allow:
    0.0.0.0/1 with 128.0.0.0/1 admits everyone as 0.0.0.0/0 does). Service tags and
    application security groups are not addresses and name no internet source."""
    sources = _sources(rule)
    if any(s.lower() in INTERNET_TAGS for s in sources):
        return True
    union = coverage(s for s in sources if network(s) is not None)
    return union.broad if allowing else union.everyone


def _port_ranges(rule: dict[str, Any]) -> list[tuple[int, int]]:
    ranges = []
    for text in [rule.get("destinationPortRange"), *(rule.get("destinationPortRanges") or [])]:
        if not text:
            continue
        text = str(text).strip()
        if text == "*":
            ranges.append((0, HIGHEST_PORT))
            continue
        low, _, high = text.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


Rule = tuple[str, dict[str, Any]]  # a rule's name, and its properties


def _inbound(group: dict[str, Any]) -> list[Rule]:
    rules = [(str(r.get("name", "?")), r.get("properties") or {})
             for r in (group.get("properties") or {}).get("securityRules") or []]
    return sorted((r for r in rules if str(r[1].get("direction", "")).lower() == "inbound"),
                  key=lambda r: int(r[1].get("priority", 65500)))


def _exposing(group: dict[str, Any], protocol: str,
              covers: Callable[[list[tuple[int, int]]], bool]) -> Rule | None:
    """The rule that admits `protocol` traffic from the internet on ports that `covers`
    accepts, unless a rule of higher priority denies that traffic first."""
    for name, rule in _inbound(group):
        if str(rule.get("protocol", "")).lower() not in (protocol, "*"):
            continue
        allowing = str(rule.get("access", "")).lower() == "allow"
        if _from_internet(rule, allowing=allowing) and covers(_port_ranges(rule)):
            return (name, rule) if allowing else None
    return None


def _port(port: int) -> Callable[[list[tuple[int, int]]], bool]:
    return lambda ranges: any(low <= port <= high for low, high in ranges)


def _every_port(ranges: list[tuple[int, int]]) -> bool:
    return any(low <= 1 and high >= HIGHEST_PORT for low, high in ranges)


def _judge(group: dict[str, Any], protocols: tuple[str, ...],
           covers: Callable[[list[tuple[int, int]]], bool], what: str) -> Verdict:
    if prop(group, "securityRules") is MISSING:
        return missing("securityRules")
    found = next(filter(None, (_exposing(group, p, covers) for p in protocols)), None)
    if found is None:
        return passed(f"no inbound rule admits {what} from the internet")
    name, rule = found
    return failed(f"rule {name} (priority {rule.get('priority')}) admits {what} from "
                  f"{', '.join(_sources(rule))}")


@check(
    "azure.network.nsg_ssh_closed_to_internet",
    resource=KIND,
    title="No network security group admits SSH (22) from the internet",
    controls={"A.8.20": "remote administration open to every address exposes hosts' most "
                        "powerful entry point to password guessing and exploits"},
    severity="high",
    remediation="Remove or narrow the rule: allow port 22 only from known addresses, or reach "
                "hosts through Azure Bastion or just-in-time VM access.",
)
def nsg_ssh_closed_to_internet(group: dict[str, Any]) -> Verdict:
    return _judge(group, TCP, _port(22), "SSH (22)")


@check(
    "azure.network.nsg_rdp_closed_to_internet",
    resource=KIND,
    title="No network security group admits RDP (3389) from the internet",
    controls={"A.8.20": "remote desktop open to every address exposes Windows hosts to "
                        "password guessing and exploits"},
    severity="high",
    remediation="Remove or narrow the rule: allow port 3389 only from known addresses, or "
                "reach hosts through Azure Bastion or just-in-time VM access.",
)
def nsg_rdp_closed_to_internet(group: dict[str, Any]) -> Verdict:
    return _judge(group, TCP, _port(3389), "RDP (3389)")


@check(
    "azure.network.nsg_all_ports_closed_to_internet",
    resource=KIND,
    title="No network security group admits every port from the internet",
    controls={"A.8.20": "a rule admitting all ports from every address leaves no filtering at "
                        "all in front of the resources behind the group"},
    severity="critical",
    remediation="Replace the rule with rules that admit only the ports the service needs, "
                "from the narrowest sources that need them.",
)
def nsg_all_ports_closed_to_internet(group: dict[str, Any]) -> Verdict:
    return _judge(group, PORTED, _every_port, "every port")
