"""GuardDuty: one resource per region holding its detectors (a region has at most one) and
their status, so that "GuardDuty is on in every collected region" is judged region by region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, jsonable, strip_metadata
from connectors.aws.services import service
from connectors.aws.session import AwsSession


def _detectors(guardduty: Any, ids: list[str]) -> list[dict[str, Any]]:
    return [{"DetectorId": detector_id,
             **jsonable(strip_metadata(guardduty.get_detector(DetectorId=detector_id)))}
            for detector_id in ids]


@service("guardduty", kinds=("aws.guardduty.region",), regional=True)
def detectors(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    guardduty = session.client("guardduty", region)
    ids = [detector_id
           for page in guardduty.get_paginator("list_detectors").paginate(
               PaginationConfig={"PageSize": 50})
           for detector_id in page["DetectorIds"]]
    data: dict[str, Any] = {}
    detail(data, "detectors", lambda: _detectors(guardduty, ids))
    partition = scope.key.split(":")[1]
    key = f"arn:{partition}:guardduty:{region}:{scope.id}:detectors"
    yield scope.resource("aws.guardduty.region", key, data, region)
