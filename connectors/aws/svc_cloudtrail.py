"""CloudTrail trails with their logging status and event selectors.

Each region lists the trails that apply to it, shadows included, so that a multi-region trail
homed in another region, or an organisation trail homed in the management account, is seen.
A trail is yielded once: in its home region, or in the first collected region when its home
region is not collected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, jsonable, strip_metadata
from connectors.aws.services import service
from connectors.aws.session import AwsSession


def _owned_here(trail: dict[str, Any], region: str, collected: list[str]) -> bool:
    home = trail.get("HomeRegion", region)
    return home == region or (home not in collected and region == collected[0])


@service("cloudtrail", kinds=("aws.cloudtrail.trail",), regional=True)
def trails(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    cloudtrail = session.client("cloudtrail", region)
    collected = session.settings.regions
    for trail in cloudtrail.describe_trails(includeShadowTrails=True)["trailList"]:
        if not _owned_here(trail, region, collected):
            continue
        yield scope.resource("aws.cloudtrail.trail", trail["TrailARN"],
                             trail_data(cloudtrail, trail), trail.get("HomeRegion", region))


def trail_data(cloudtrail: Any, trail: dict[str, Any]) -> dict[str, Any]:
    """A trail as listed, with its logging status and event selectors."""
    arn = trail["TrailARN"]
    data = jsonable(trail)
    # A shadow trail's status is only readable by its ARN.
    detail(data, "status", lambda: cloudtrail.get_trail_status(Name=arn),
           pick=lambda r: jsonable(strip_metadata(r)))
    # Read even where HasCustomEventSelectors is false: not every endpoint sets that flag,
    # and a trail costs one call (an account has at most five trails a region).
    detail(data, "event_selectors", lambda: cloudtrail.get_event_selectors(TrailName=arn),
           pick=lambda r: {k: r.get(k) or [] for k in
                           ("EventSelectors", "AdvancedEventSelectors")})
    return data
