"""EC2 network exposure: what security groups let in from the internet, the default security
group, and whether VPC traffic is recorded by flow logs."""

from __future__ import annotations

from typing import Any

from checks.address_ranges import coverage
from checks.registry import check
from collector.model import Verdict, errored, failed, not_applicable, passed

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
ALL_PROTOCOLS = "-1"
TCP = {"tcp", "6"}
PORTED = {"tcp", "6", "udp", "17"}
HIGHEST_PORT = 65535
SHOWN_RANGES = 8


def _sources(rules: list[dict[str, Any]]) -> list[Any]:
    return [r.get("CidrIp") for rule in rules for r in rule.get("IpRanges", [])] + [
        r.get("CidrIpv6") for rule in rules for r in rule.get("Ipv6Ranges", [])]


def _exposure(rules: list[dict[str, Any]], what: str) -> Verdict | None:
    """A failure when the rules that admit `what` together admit a large part of the
    internet, whatever ranges they split it into; an error when a range cannot be read."""
    union = coverage(_sources(rules))
    if union.broad:
        shown = ", ".join(str(n) for n in union.networks[:SHOWN_RANGES])
        more = len(union.networks) - SHOWN_RANGES
        return failed(f"{what} open to {union.describe()} ({shown}"
                      f"{f' and {more} more' if more > 0 else ''})")
    if union.malformed:
        return errored(f"{what}: unreadable source ranges {', '.join(union.malformed)}")
    return None


def _port_range(rule: dict[str, Any]) -> tuple[int, int]:
    # A ported rule without ports, or a port of -1, means every port.
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    return (0 if low < 0 else low, HIGHEST_PORT if high < 0 else high)


def _opens(rule: dict[str, Any], port: int) -> bool:
    protocol = str(rule.get("IpProtocol"))
    if protocol == ALL_PROTOCOLS:
        return True
    low, high = _port_range(rule)
    return protocol in TCP and low <= port <= high


def _opens_every_port(rule: dict[str, Any]) -> bool:
    protocol = str(rule.get("IpProtocol"))
    if protocol == ALL_PROTOCOLS:
        return True
    low, high = _port_range(rule)
    return protocol in PORTED and low <= 1 and high >= HIGHEST_PORT


@check(
    "aws.ec2.security_group_admin_ports_closed_to_internet",
    resource="aws.ec2.security_group",
    title="No security group admits SSH (22) or RDP (3389) from anywhere",
    controls={
        "A.8.20": "remote administration ports open to the internet (0.0.0.0/0, ::/0, or "
        "ranges that together cover much of it) expose hosts' most powerful entry points",
    },
    severity="high",
    remediation="Remove the internet-wide sources (0.0.0.0/0, ::/0, or wide ranges such as "
    "0.0.0.0/1 with 128.0.0.0/1) from rules covering ports 22 and 3389; "
    "reach hosts through SSM Session Manager, a VPN or a bastion restricted by CIDR.",
)
def security_group_admin_ports_closed_to_internet(group: dict[str, Any]) -> Verdict:
    verdicts = [v for port, name in ADMIN_PORTS.items()
                if (v := _exposure([r for r in group.get("IpPermissions", []) if _opens(r, port)],
                                   f"{name} ({port})"))]
    failures = [v.reason for v in verdicts if v.status == "fail"]
    if failures:
        return failed("; ".join(failures))
    if verdicts:
        return verdicts[0]
    return passed("no ingress from a large part of the internet on ports 22 or 3389")


@check(
    "aws.ec2.security_group_all_ports_closed_to_internet",
    resource="aws.ec2.security_group",
    title="No security group admits all ports or protocols from anywhere",
    controls={
        "A.8.20": "a rule admitting every port from 0.0.0.0/0 or ::/0 leaves the network no "
        "filtering at all in front of the group's resources",
    },
    severity="critical",
    remediation="Replace the rule with ones that admit only the ports the service needs, from "
    "the narrowest sources that need them.",
)
def security_group_all_ports_closed_to_internet(group: dict[str, Any]) -> Verdict:
    verdict = _exposure([r for r in group.get("IpPermissions", []) if _opens_every_port(r)],
                        "every port")
    return verdict or passed("no rule admits every port from a large part of the internet")


@check(
    "aws.ec2.default_security_group_restricts_all_traffic",
    resource="aws.ec2.security_group",
    title="Each VPC's default security group has no rules",
    controls={
        "A.8.20": "resources launched without an explicit group land in the default one; with "
        "no rules they get no network access that was not granted on purpose",
    },
    severity="medium",
    remediation="Remove every inbound and outbound rule from the VPC's default security group "
    "and attach purpose-made groups to resources instead.",
)
def default_security_group_restricts_all_traffic(group: dict[str, Any]) -> Verdict:
    if group.get("GroupName") != "default":
        return not_applicable("not a default security group")
    ingress = len(group.get("IpPermissions", []))
    egress = len(group.get("IpPermissionsEgress", []))
    if ingress or egress:
        return failed(f"default group has {ingress} inbound and {egress} outbound rules")
    return passed("default group allows no traffic")


def _delivering(flow_log: dict[str, Any]) -> bool:
    return (
        flow_log.get("FlowLogStatus") == "ACTIVE" and flow_log.get("DeliverLogsStatus") != "FAILED"
    )


@check(
    "aws.ec2.vpc_flow_logs_enabled",
    resource="aws.ec2.vpc",
    title="Every VPC records its traffic with an active flow log",
    controls={
        "A.8.15": "flow logs are the record of which addresses talked to which, and whether "
        "the network allowed it",
        "A.8.20": "logging of network traffic is part of securing the network: without it, "
        "attacks on it and misuse of it leave no trace",
    },
    severity="medium",
    remediation="Create a flow log for the VPC (traffic type ALL, or at least REJECT) that "
    "delivers to CloudWatch Logs or S3, and fix its delivery if it reports FAILED.",
)
def vpc_flow_logs_enabled(vpc: dict[str, Any]) -> Verdict:
    flow_logs = vpc.get("FlowLogs", [])
    working = [fl for fl in flow_logs if _delivering(fl)]
    if working:
        traffic = ", ".join(sorted({str(fl.get("TrafficType")) for fl in working}))
        return passed(f"{len(working)} active flow log(s) capturing {traffic} traffic")
    if flow_logs:
        return failed(f"{len(flow_logs)} flow log(s) but none active and delivering")
    return failed("no flow log on the VPC")
