"""The org's credentials and where they may be used from: weak authenticators off, API tokens
restricted to network zones, no zone that takes in the whole internet, and the number of super
admins."""

from __future__ import annotations

import ipaddress
from typing import Any

from checks.registry import ScopeView, check, scope_check
from collector.model import Verdict, errored, failed, not_applicable, passed

MIN_SUPER_ADMINS, MAX_SUPER_ADMINS = 2, 4
# Phone (SMS and voice) is open to SIM swap and interception; a security question is a second
# thing the user knows, not a second factor.
WEAK_AUTHENTICATORS = {"phone_number": "Phone (SMS, voice)",
                       "security_question": "Security Question"}
ROLE_ASSIGNMENT = "okta.role_assignment"


@check(
    "okta.authenticator.weak_authenticators_inactive",
    resource="okta.authenticator",
    title="Phone and security-question authenticators are inactive",
    controls={
        "A.8.5": "a factor that can be intercepted or guessed does not make sign-in secure",
        "A.5.17": "only authentication information of adequate strength is to be issued",
    },
    severity="medium",
    remediation="Move users to Okta Verify or a security key, then deactivate the Phone and "
                "Security Question authenticators (Security > Authenticators).",
)
def weak_authenticators_inactive(authenticator: dict[str, Any]) -> Verdict:
    name = WEAK_AUTHENTICATORS.get(authenticator["key"])
    if name is None:
        return not_applicable(f"{authenticator['key']} is not a weak authenticator")
    if authenticator["status"] == "ACTIVE":
        return failed(f"{name} is active")
    return passed(f"{name} is {authenticator['status']}")


@check(
    "okta.api_token.network_restricted",
    resource="okta.api_token",
    title="API tokens can be used only from named network zones",
    controls={
        "A.8.5": "a leaked token that works from anywhere authenticates its finder with the "
                 "rights of the admin who made it",
        "A.8.20": "calls to the identity provider's API are restricted to the organisation's "
                  "own networks",
    },
    severity="high",
    remediation="Edit the token (Security > API > Tokens) and set 'API calls made with this "
                "token must originate from: In any of the following zones', naming the zones "
                "of the hosts that use it.",
)
def network_restricted(token: dict[str, Any]) -> Verdict:
    network = token["network"]
    if not isinstance(network, dict) or not network.get("connection"):
        return errored("the token's network condition was not returned")
    connection = network["connection"]
    included = network.get("include") or []
    if connection == "ANYWHERE":
        return failed("usable from any IP address")
    if connection != "ZONE":
        return errored(f"network connection {connection!r} is not one this check knows")
    if not included:
        return failed("usable from anywhere outside the excluded zones")
    return passed(f"usable only from zone(s) {', '.join(map(str, included))}")


@check(
    "okta.zone.not_whole_internet",
    resource="okta.zone",
    title="No allow-list network zone takes in the whole internet",
    controls={
        "A.8.20": "a zone of 0.0.0.0/0 makes every rule and token restricted to it usable "
                  "from any network",
    },
    severity="medium",
    remediation="Replace the catch-all range with the organisation's egress addresses, or "
                "delete the zone and the rules that rely on it.",
)
def not_whole_internet(zone: dict[str, Any]) -> Verdict:
    if zone["type"] != "IP":
        return not_applicable(f"a {zone['type']} zone (locations, not address ranges)")
    if zone["status"] != "ACTIVE":
        return not_applicable(f"zone is {zone['status']}")
    if zone.get("usage") == "BLOCKLIST":
        return not_applicable("a block list")
    ranges = [g["value"] for g in zone.get("gateways") or [] if g.get("type") == "CIDR"]
    ranges += [g["value"] for g in zone.get("gateways") or [] if g.get("type") == "RANGE"]
    for value in ranges:
        if _covers_everything(str(value)):
            return failed(f"gateway {value} takes in every address")
    return passed(f"{len(ranges)} bounded range(s)")


def _covers_everything(value: str) -> bool:
    try:
        if "-" in value:
            low, high = (ipaddress.ip_address(v.strip()) for v in value.split("-", 1))
            return int(low) == 0 and int(high) == int(ipaddress.ip_address(
                "255.255.255.255" if low.version == 4 else "ffff:ffff:ffff:ffff:ffff:ffff:"
                                                           "ffff:ffff"))
        return ipaddress.ip_network(value, strict=False).prefixlen == 0
    except ValueError:
        raise ValueError(f"gateway {value!r} is not an address range") from None


@scope_check(
    "okta.org.super_admins_between_2_and_4",
    scope="okta.org",
    uses=(ROLE_ASSIGNMENT,),
    title=f"Between {MIN_SUPER_ADMINS} and {MAX_SUPER_ADMINS} users are super admins",
    controls={
        "A.8.2": "the most privileged role is kept to the few who need it, with a second "
                 "holder so that its use never rests on one person",
    },
    severity="high",
    remediation="Keep two to four super admins (one of them an emergency access account); "
                "give others the least privileged standard or custom admin role for their "
                "task.",
)
def super_admins_between_2_and_4(view: ScopeView) -> Verdict:
    holders = sorted({a["userId"] for a in view.of(ROLE_ASSIGNMENT)
                      if a["type"] == "SUPER_ADMIN" and a.get("status", "ACTIVE") == "ACTIVE"})
    count = len(holders)
    if count < MIN_SUPER_ADMINS:
        return failed(f"{count} super admin(s): no second holder if one is unavailable")
    if count > MAX_SUPER_ADMINS:
        return failed(f"{count} super admins, more than {MAX_SUPER_ADMINS}")
    return passed(f"{count} super admins")
