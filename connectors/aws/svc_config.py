"""AWS Config: one resource per region holding its configuration recorders and whether each
is recording, so that "Config records in every collected region" is judged region by region."""

from __future__ import annotations

from collections.abc import Iterator

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession


@service("config", kinds=("aws.config.region",), regional=True)
def recorders(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    config = session.client("config", region)
    data = jsonable({"recorders": config.describe_configuration_recorders()
                     ["ConfigurationRecorders"]})
    if data["recorders"]:
        detail(data, "recorder_status", config.describe_configuration_recorder_status,
               pick=lambda r: jsonable(r["ConfigurationRecordersStatus"]))
    partition = scope.key.split(":")[1]
    key = f"arn:{partition}:config:{region}:{scope.id}:configuration-recorders"
    yield scope.resource("aws.config.region", key, data, region)
