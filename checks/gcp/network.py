"""VPC networks: firewall rules that let the internet in, subnetworks without flow logs, and
the default network that every new project used to get."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checks.address_ranges import coverage
from checks.registry import ScopeView, check, scope_check
from collector.model import Verdict, errored, failed, not_applicable, passed

FIREWALL = "gcp.compute.firewall"
NETWORK = "gcp.compute.network"
SUBNETWORK = "gcp.compute.subnetwork"
PORTED = frozenset({"tcp", "udp", "sctp"})
HIGHEST_PORT = 65535


def _port_ranges(ports: list[Any]) -> list[tuple[int, int]]:
    out = []
    for port in ports:
        low, _, high = str(port).partition("-")
        out.append((int(low), int(high or low)))
    return out


def _opens(allowed: dict[str, Any], protocols: frozenset[str], port: int | None) -> bool:
    """Whether one `allowed` entry admits `port` of `protocols` (`port` None: every port)."""
    protocol = str(allowed["IPProtocol"]).lower()
    if protocol == "all":
        return True
    if protocol not in protocols:
        return False
    ports = allowed.get("ports")
    if not ports:  # a ported protocol without ports: all of them
        return True
    ranges = _port_ranges(ports)
    if port is None:
        return any(low <= 1 and high >= HIGHEST_PORT for low, high in ranges)
    return any(low <= port <= high for low, high in ranges)


def _internet_rule(protocols: frozenset[str], port: int | None, what: str
                   ) -> Callable[[dict[str, Any]], Verdict]:
    def judge(data: dict[str, Any]) -> Verdict:
        rule = data["resource"]
        if rule.get("direction", "INGRESS") != "INGRESS":
            return not_applicable("an egress rule")
        if rule.get("disabled") is True:
            return passed("the rule is disabled")
        if "allowed" not in rule:
            return passed("a deny rule")
        # A rule with source tags or service accounts and no ranges admits no address.
        # Its ranges together, however split: 0.0.0.0/1 with 128.0.0.0/1 is the internet.
        admitted = coverage(rule.get("sourceRanges") or [])
        if admitted.malformed:
            return errored(f"source ranges that are not ranges: {', '.join(admitted.malformed)}")
        if not admitted.broad:
            return passed("the rule admits no traffic from the internet at large")
        if any(_opens(a, protocols, port) for a in rule["allowed"]):
            return failed(f"the rule admits {what} from {admitted.describe()}")
        return passed(f"the rule admits traffic from {admitted.describe()}, but not {what}")
    return judge


NETWORK_REMEDIATION = ("Delete the rule or narrow its source ranges to the addresses that "
                       "need it; reach instances through Identity-Aware Proxy TCP forwarding "
                       "(35.235.240.0/20) or a bastion instead.")
EXPOSED = ("an instance reachable from the whole internet on this port is exposed to every "
           "scan and password attack")

check(
    "gcp.firewall_no_ssh_from_internet", resource=FIREWALL,
    title="No firewall rule admits SSH (tcp/22) from 0.0.0.0/0 or ::/0",
    controls={"A.8.20": f"{EXPOSED}; networks admit administration only from where it is "
                        "done",
              "A.8.22": "the network's edge does not separate administration from the "
                        "internet"},
    severity="high", remediation=NETWORK_REMEDIATION,
)(_internet_rule(frozenset({"tcp"}), 22, "SSH (tcp/22)"))

check(
    "gcp.firewall_no_rdp_from_internet", resource=FIREWALL,
    title="No firewall rule admits RDP (3389) from 0.0.0.0/0 or ::/0",
    controls={"A.8.20": f"{EXPOSED}; networks admit administration only from where it is "
                        "done",
              "A.8.22": "the network's edge does not separate administration from the "
                        "internet"},
    severity="high", remediation=NETWORK_REMEDIATION,
)(_internet_rule(frozenset({"tcp", "udp"}), 3389, "RDP (3389)"))

check(
    "gcp.firewall_no_all_ports_from_internet", resource=FIREWALL,
    title="No firewall rule admits all ports from 0.0.0.0/0 or ::/0",
    controls={"A.8.20": "a rule that admits every port from everywhere leaves the network "
                        "no control over what reaches its instances",
              "A.8.22": "such a rule removes the boundary between the internet and the "
                        "network"},
    severity="critical", remediation=NETWORK_REMEDIATION,
)(_internet_rule(PORTED, None, "all ports"))


@check(
    "gcp.subnetwork_flow_logs",
    resource=SUBNETWORK,
    title="Every subnetwork records VPC flow logs",
    controls={"A.8.15": "flow logs record which addresses talked to which, when, on what "
                        "ports",
              "A.8.16": "network traffic can be monitored for anomalies only where it is "
                        "recorded"},
    severity="medium",
    remediation="Turn on flow logs (gcloud compute networks subnets update SUBNET "
                "--enable-flow-logs), with a sampling rate and aggregation interval to suit.",
)
def subnetwork_flow_logs(data: dict[str, Any]) -> Verdict:
    subnet = data["resource"]
    purpose = subnet.get("purpose", "PRIVATE")
    if purpose not in ("PRIVATE", "PRIVATE_RFC_1918"):
        return not_applicable(f"a {purpose} subnetwork, which has no flow logs")
    config = subnet.get("logConfig")
    enabled = config.get("enable") if isinstance(config, dict) and "enable" in config else (
        subnet.get("enableFlowLogs"))
    if enabled is True:
        return passed("flow logs are on")
    return failed("flow logs are off" if enabled is False else
                  "flow logs were never turned on")


@scope_check(
    "gcp.project_default_network_removed",
    scope="gcp.project",
    uses=(NETWORK,),
    title="The project has no default network",
    controls={"A.8.20": "the default network comes with rules that admit SSH, RDP and ICMP "
                        "from anywhere and a subnetwork in every region, designed by nobody",
              "A.8.22": "networks are laid out by need, not by the auto-mode default"},
    severity="medium",
    remediation="Move workloads to a custom-mode VPC, delete the default network, and set the "
                "organization policy constraints/compute.skipDefaultNetworkCreation.",
)
def project_default_network_removed(project: ScopeView) -> Verdict:
    names = [str(n["resource"]["name"]) for n in project.of(NETWORK)]
    default = [n for n in project.of(NETWORK) if n["resource"]["name"] == "default"]
    if default:
        return failed(f"the default network exists: {default[0]['name']}")
    return passed(f"no default network ({len(names)} other networks)")
