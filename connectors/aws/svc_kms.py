"""KMS customer-managed keys with their aliases and rotation status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, error_code, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

# Only AWS may create aliases under this prefix, so their keys are AWS-managed.
AWS_MANAGED_ALIAS = "alias/aws/"


def _aliases(kms: Any) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = defaultdict(list)
    for page in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 100}):
        for alias in page["Aliases"]:
            if "TargetKeyId" in alias:
                by_key[alias["TargetKeyId"]].append(alias["AliasName"])
    return by_key


def _rotatable(meta: dict[str, Any]) -> bool:
    """Automatic rotation exists only for enabled symmetric keys whose material KMS made."""
    return (meta.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
            and meta.get("Origin", "AWS_KMS") == "AWS_KMS"
            and meta.get("KeyState") == "Enabled")


@service("kms", kinds=("aws.kms.key",), regional=True)
def keys(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    kms = session.client("kms", region)
    aliases = _aliases(kms)
    for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1000}):
        for entry in page["Keys"]:
            key_id = entry["KeyId"]
            names = aliases.get(key_id, [])
            if any(name.startswith(AWS_MANAGED_ALIAS) for name in names):
                continue  # saves a describe_key call per AWS-managed key
            try:
                meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            except ClientError as exc:
                if error_code(exc) == "NotFoundException":
                    continue  # deleted since it was listed
                raise
            if meta.get("KeyManager") != "CUSTOMER":
                continue
            data = jsonable({k: v for k, v in meta.items() if k != "AWSAccountId"})
            data["Aliases"] = sorted(names)
            if _rotatable(meta):
                detail(data, "rotation_enabled",
                       lambda key_id=key_id: kms.get_key_rotation_status(KeyId=key_id),
                       pick=lambda r: r["KeyRotationEnabled"])
            yield scope.resource("aws.kms.key", meta["Arn"], data, region)
