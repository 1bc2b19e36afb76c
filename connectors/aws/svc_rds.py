"""RDS DB instances (this API also lists Aurora, Neptune and DocumentDB instances)."""

from __future__ import annotations

from collections.abc import Iterator

from collector.model import Resource, Scope
from connectors.aws.fetch import jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

# LatestRestorableTime moves every few minutes with no change of configuration: keeping it would
# store a new version of every instance on every run.
_VOLATILE = frozenset({"LatestRestorableTime"})


@service("rds", kinds=("aws.rds.db_instance",), regional=True)
def db_instances(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    rds = session.client("rds", region)
    # 100 is the most describe_db_instances returns per call.
    pages = rds.get_paginator("describe_db_instances").paginate(PaginationConfig={"PageSize": 100})
    for page in pages:
        for instance in page["DBInstances"]:
            data = {k: jsonable(v) for k, v in instance.items() if k not in _VOLATILE}
            yield scope.resource("aws.rds.db_instance", instance["DBInstanceArn"], data, region)
