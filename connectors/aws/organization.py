"""AWS Organizations: which accounts an `organization:` source collects, and the configuration
of the organisation itself (the organisation, its roots, its accounts, its service control
policies and its organisation trails). It lists and normalises; it never judges.

The source's own credentials are those of the management account or of a delegated
administrator; each member account is then reached through `organization.role_name`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.aws.fetch import describe, detail, jsonable
from connectors.aws.session import AwsSession, CallObserver
from connectors.aws.settings import OrganizationSettings, Settings
from connectors.aws.svc_cloudtrail import trail_data

# The provider of an organisation's scope: its scope checks are not those of an account.
PROVIDER = "aws-organizations"
# AWS documents at most five levels of OUs under a root; the walk stops well beyond that.
_MAX_DEPTH = 10
_AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)


class OrganizationUnreachable(RuntimeError):
    """The organisation or its accounts could not be listed: no account can be planned."""


@dataclass
class Listing:
    """One listing of the organisation. `members` are the active accounts the source collects;
    `active` are all the active accounts; `left_out` says, per account listed but not
    collected, why."""

    scope: Scope
    partition: str
    items: list[Resource | CollectionError] = field(default_factory=list)
    members: list[str] = field(default_factory=list)
    active: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def member_settings(settings: Settings, partition: str, account: str) -> Settings:
    """The settings that collect one member account: its role, reached with the source's own
    credentials (through the source's role_arn, when it has one)."""
    org = settings.organization
    assert org is not None, "member_settings of a source without organization:"
    return settings.model_copy(update={
        "organization": None,
        "role_arn": f"arn:{partition}:iam::{account}:role/{org.role_name}",
        "external_id": org.external_id,
        "via_role_arn": settings.role_arn,
        "via_external_id": settings.external_id,
    })


def list_organization(settings: Settings, observer: CallObserver | None = None) -> Listing:
    """List the organisation and decide which accounts are collected. Raises
    OrganizationUnreachable when the organisation or its accounts cannot be listed."""
    org_settings = settings.organization
    assert org_settings is not None, "list_organization of a source without organization:"
    try:
        session = AwsSession(settings, observer)
        org = session.client("organizations", settings.regions[0])
        organization = org.describe_organization()["Organization"]
        accounts = [account for page in org.get_paginator("list_accounts").paginate()
                    for account in page["Accounts"]]
        roots = [root for page in org.get_paginator("list_roots").paginate()
                 for root in page["Roots"]]
        include = _expand(org, org_settings.include)
        exclude = _expand(org, org_settings.exclude)
    except _AWS_ERRORS as exc:
        raise OrganizationUnreachable(
            f"the organisation could not be listed: {describe(exc)}") from exc
    partition = organization["Arn"].split(":")[1]
    scope = Scope(provider=PROVIDER, id=organization["Id"], key=organization["Arn"])
    listing = Listing(scope, partition)
    listing.items.append(scope.resource("aws.organizations.organization", organization["Arn"],
                                        jsonable(organization)))
    listing.items.extend(scope.resource("aws.organizations.root", root["Arn"], jsonable(root))
                         for root in roots)
    for account in sorted(accounts, key=lambda a: a["Id"]):
        listing.items.append(scope.resource("aws.organizations.account", account["Arn"],
                                            jsonable(account)))
        listing.names[account["Id"]] = account.get("Name", "")
        if account.get("Status") == "ACTIVE":
            listing.active.append(account["Id"])
        why = _left_out(account, org_settings, include, exclude)
        if why is None:
            listing.members.append(account["Id"])
        else:
            listing.left_out[account["Id"]] = why
    listing.items.extend(_policies(org, scope))
    listing.items.extend(_organization_trails(session, scope, settings.regions))
    return listing


def _left_out(account: dict[str, Any], org: OrganizationSettings, include: set[str] | None,
              exclude: set[str] | None) -> str | None:
    if account.get("Status") != "ACTIVE":
        return f"its status is {account.get('Status')}"
    if exclude and account["Id"] in exclude:
        return "excluded by organization.exclude"
    if include is not None and account["Id"] not in include:
        return "not named by organization.include"
    return None


def _expand(org: Any, named: list[str]) -> set[str] | None:
    """The account ids that `named` (account ids, OU and root ids) stand for; None when nothing
    is named."""
    if not named:
        return None
    accounts = {name for name in named if name.isdigit()}
    for parent in (name for name in named if not name.isdigit()):
        accounts |= _accounts_under(org, parent)
    return accounts


def _accounts_under(org: Any, parent: str) -> set[str]:
    found: set[str] = set()
    level = [parent]
    for _ in range(_MAX_DEPTH):
        if not level:
            break
        below: list[str] = []
        for unit in level:
            found |= {account["Id"] for page in org.get_paginator(
                "list_accounts_for_parent").paginate(ParentId=unit) for account in page["Accounts"]}
            below += [child["Id"] for page in org.get_paginator(
                "list_organizational_units_for_parent").paginate(ParentId=unit)
                for child in page["OrganizationalUnits"]]
        level = below
    return found


def _policies(org: Any, scope: Scope) -> Iterator[Resource | CollectionError]:
    """Every service control policy, with its document and the roots, OUs and accounts it is
    attached to."""
    kinds = ("aws.organizations.policy",)
    try:
        policies = [policy for page in org.get_paginator("list_policies").paginate(
            Filter="SERVICE_CONTROL_POLICY") for policy in page["Policies"]]
    except _AWS_ERRORS as exc:
        yield scope.error("organizations", ALL_REGIONS, kinds, describe(exc))
        return
    for policy in policies:
        data = jsonable(policy)
        detail(data, "content", lambda p=policy: org.describe_policy(PolicyId=p["Id"]),
               pick=lambda r: r["Policy"].get("Content"))
        detail(data, "targets", lambda p=policy: [
            jsonable(target) for page in org.get_paginator("list_targets_for_policy").paginate(
                PolicyId=p["Id"]) for target in page["Targets"]])
        yield scope.resource("aws.organizations.policy", policy["Arn"], data)


def _organization_trails(session: AwsSession, scope: Scope,
                         regions: list[str]) -> Iterator[Resource | CollectionError]:
    """The organisation trails that the source's account sees, once each, with their status."""
    seen: set[str] = set()
    for region in regions:
        cloudtrail = session.client("cloudtrail", region)
        try:
            trails = cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]
        except _AWS_ERRORS as exc:
            yield scope.error("cloudtrail", region, ("aws.organizations.trail",), describe(exc))
            continue
        for trail in trails:
            arn = trail["TrailARN"]
            if not trail.get("IsOrganizationTrail") or arn in seen:
                continue
            seen.add(arn)
            yield scope.resource("aws.organizations.trail", arn, trail_data(cloudtrail, trail),
                                 trail.get("HomeRegion", region))
