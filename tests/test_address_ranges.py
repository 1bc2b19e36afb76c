"""The address-range helper: the union of ranges, however split, decides how much of the
internet they admit; text that is not a range is never silently dropped."""

from __future__ import annotations

import ipaddress

import pytest

from checks.address_ranges import coverage, covers_everyone

EVERY_SLASH_8 = [f"{first}.0.0.0/8" for first in range(256)]
EVERY_IPV6_SLASH_4 = [f"{first:x}000::/4" for first in range(16)]


@pytest.mark.parametrize("ranges", [
    ["0.0.0.0/0"],
    [" 0.0.0.0/0 "],
    ["1.2.3.4/0"],  # host bits under /0: still everything, as AWS reads it
    ["0.0.0.0/1", "128.0.0.0/1"],
    ["128.0.0.0/1", "0.0.0.0/2", "64.0.0.0/2"],
    EVERY_SLASH_8,
    [*reversed(EVERY_SLASH_8), "10.0.0.0/8"],  # overlaps and any order
    ["::/0"],
    ["0:0:0:0:0:0:0:0/0"],
    ["::/1", "8000::/1"],
    EVERY_IPV6_SLASH_4,
    ["10.0.0.0/8", "::/1", "8000::/1"],  # all of one family is everyone
    ["0.0.0.0/1", "128.0.0.0/1", "not a range"],
])
def test_ranges_that_together_cover_everyone(ranges: list[str]) -> None:
    union = coverage(ranges)
    assert union.everyone and union.broad and covers_everyone(ranges)


@pytest.mark.parametrize(("ranges", "broad"), [
    (["0.0.0.0/1"], True),
    (EVERY_SLASH_8[1:], True),  # all but 0.0.0.0/8
    (["0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3"], True),
    (["::/1"], True),
    (["2000::/3"], True),  # every global unicast IPv6 address
    (["10.0.0.0/8"], False),
    (["10.0.0.0/8", "192.168.0.0/16", "203.0.113.7"], False),
    (["2001:db8::/32"], False),
    (["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"], False),
    (["11.0.0.0/8"], True),  # a whole public /8
    ([], False),
])
def test_ranges_short_of_everyone(ranges: list[str], broad: bool) -> None:
    union = coverage(ranges)
    assert not union.everyone and not covers_everyone(ranges)
    assert union.broad is broad


def test_shares_and_networks_are_the_collapsed_union() -> None:
    union = coverage(["10.0.0.0/9", "10.128.0.0/9", "10.0.0.0/16", "2001:db8::/33",
                      "2001:db8:8000::/33"])
    assert union.networks == (ipaddress.ip_network("10.0.0.0/8"),
                              ipaddress.ip_network("2001:db8::/32"))
    assert union.ipv4 == 1 / 256 and union.ipv6 == 2**96 / 2**128
    assert coverage(["0.0.0.0/1"]).describe() == "50.00% of IPv4"
    assert coverage(["0.0.0.0/1", "128.0.0.0/1"]).describe() == "all of IPv4"


@pytest.mark.parametrize("text", ["0.0.0.0/33", "300.0.0.0/8", "10.0.0.0/8/8", "any", "",
                                  None, 3.5, ["0.0.0.0/0"], True, "::/129", "0/0"])
def test_malformed_ranges_are_kept_apart_never_dropped(text: object) -> None:
    union = coverage(["10.0.0.0/8", text])
    assert union.malformed == ("<list>" if isinstance(text, list) else str(text),)
    assert union.networks == (ipaddress.ip_network("10.0.0.0/8"),)


def test_a_deeply_nested_range_is_malformed_not_a_crash() -> None:
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    assert coverage([nested]).malformed == ("<list>",)


def test_azure_sql_firewall_rules_add_up() -> None:
    from checks.registry import REGISTRY, load_all

    load_all()

    def judged(*rules: tuple[str, str]) -> str:
        server = {"properties": {"publicNetworkAccess": "Enabled"}, "firewall_rules": [
            {"name": f"r{i}", "properties": {"startIpAddress": start, "endIpAddress": end}}
            for i, (start, end) in enumerate(rules)]}
        return REGISTRY["azure.sql.server_firewall_not_open_to_all"].evaluate(server).status

    assert judged(("0.0.0.0", "127.255.255.255"), ("128.0.0.0", "255.255.255.255")) == "fail"
    assert judged(("1.0.0.0", "126.255.255.255")) == "fail"
    assert judged(("0.0.0.0", "255.255.255.255")) == "fail"
    # 0.0.0.0-0.0.0.0 is Azure's "allow Azure services" rule, not the internet.
    assert judged(("0.0.0.0", "0.0.0.0"), ("203.0.113.0", "203.0.113.255")) == "pass"
    assert judged(("203.0.113.9", "203.0.113.1")) == "error"
    assert judged(("10.0.0.0", "not an address"), ("0.0.0.0", "255.255.255.255")) == "fail"


def test_gcp_firewall_rules_and_sql_networks_add_up() -> None:
    from checks.registry import REGISTRY, load_all

    load_all()

    # Cloud Asset Inventory holds a firewall's or instance's own fields under "resource".
    def ssh(*ranges: str) -> str:
        rule = {"direction": "INGRESS", "disabled": False, "sourceRanges": list(ranges),
                "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}]}
        return REGISTRY["gcp.firewall_no_ssh_from_internet"].evaluate({"resource": rule}).status

    def sql(*ranges: str) -> str:
        instance = {"resource": {"settings": {"ipConfiguration": {
            "ipv4Enabled": True, "authorizedNetworks": [{"value": r} for r in ranges]}}}}
        return REGISTRY["gcp.sql_no_world_authorized_network"].evaluate(instance).status

    assert ssh("0.0.0.0/1", "128.0.0.0/1") == "fail"
    assert ssh("::/1", "8000::/1") == "fail"
    assert ssh("10.0.0.0/8", "203.0.113.0/24") == "pass"
    assert ssh("not a range") == "error"
    assert sql("0.0.0.0/1", "128.0.0.0/1") == "fail"
    assert sql("198.51.100.7/32") == "pass"
