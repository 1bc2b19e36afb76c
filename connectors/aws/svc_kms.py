"""KMS customer-managed keys with their rotation status."""

from __future__ import annotations

from collections.abc import Iterator

from collector.model import Resource, Scope
from connectors.aws.fetch import detail
from connectors.aws.services import service
from connectors.aws.session import AwsSession


@service("kms", kinds=("aws.kms.key",), regional=True)
def keys(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    kms = session.client("kms", region)
    for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1000}):
        for entry in page["Keys"]:
            key_id = entry["KeyId"]
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER":
                continue
            data = {k: v for k, v in meta.items() if k != "AWSAccountId"}
            if meta.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT" and \
                    meta.get("KeyState") == "Enabled":
                detail(data, "rotation_enabled",
                       lambda key_id=key_id: kms.get_key_rotation_status(KeyId=key_id),
                       pick=lambda r: r["KeyRotationEnabled"])
            yield scope.resource("aws.kms.key", meta["Arn"], data, region)
