"""S3 bucket settings read in bulk from AWS Config, in the shapes that S3's own GetBucket* calls
return, so that checks cannot tell which way a setting was read.

Config is used only in a region where a recorder is on, is healthy, records AWS::S3::Bucket and
records it continuously (a daily recording can be a day old). A bucket that Config has not
recorded, and a setting that its item lacks, are left to the direct calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from connectors.aws.fetch import jsonable

BUCKET_TYPE = "AWS::S3::Bucket"
BATCH = 100  # the most resource keys BatchGetResourceConfig accepts
# Items in these states describe no current bucket.
GONE = frozenset({"ResourceDeleted", "ResourceNotRecorded", "ResourceDeletedNotRecorded"})
BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                  "RestrictPublicBuckets")


def covers_buckets(recorder: dict[str, Any]) -> bool:
    group = recorder.get("recordingGroup")
    if not group or group.get("allSupported"):
        return True
    if (group.get("recordingStrategy") or {}).get("useOnly") == "EXCLUSION_BY_RESOURCE_TYPES":
        excluded = (group.get("exclusionByResourceTypes") or {}).get("resourceTypes") or []
        return BUCKET_TYPE not in excluded
    return BUCKET_TYPE in (group.get("resourceTypes") or [])


def continuous(recorder: dict[str, Any]) -> bool:
    mode = recorder.get("recordingMode") or {}
    frequency = mode.get("recordingFrequency", "CONTINUOUS")
    for override in mode.get("recordingModeOverrides") or []:
        if BUCKET_TYPE in (override.get("resourceTypes") or []):
            frequency = override.get("recordingFrequency", frequency)
    return frequency == "CONTINUOUS"


def records_buckets(config: Any) -> bool:
    """Whether Config in this client's region records S3 buckets as they change. Any failure to
    tell (Config not allowed, not available) means no: the direct calls are always right."""
    try:
        recorders = config.describe_configuration_recorders()["ConfigurationRecorders"]
        if not recorders:
            return False
        statuses = {s.get("name"): s for s in
                    config.describe_configuration_recorder_status()["ConfigurationRecordersStatus"]}
    except (ClientError, BotoCoreError, ResponseParserError):
        return False
    for recorder in recorders:
        status = statuses.get(recorder.get("name"), {})
        healthy = status.get("recording") and str(status.get("lastStatus", "")).upper() != "FAILURE"
        if healthy and covers_buckets(recorder) and continuous(recorder):
            return True
    return False


def bucket_items(config: Any, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The current configuration items of these buckets, by name (at most BATCH names)."""
    keys = [{"resourceType": BUCKET_TYPE, "resourceId": name} for name in names]
    if not keys:
        return {}
    response = config.batch_get_resource_config(resourceKeys=keys)
    return {item["resourceId"]: item for item in response.get("baseConfigurationItems", [])
            if item.get("configurationItemStatus") not in GONE}


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _encryption(value: dict[str, Any]) -> dict[str, Any] | None:
    rules = []
    for rule in value.get("rules") or []:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        rules.append(_drop_none({
            "ApplyServerSideEncryptionByDefault": _drop_none({
                "SSEAlgorithm": default.get("sseAlgorithm"),
                "KMSMasterKeyID": default.get("kmsMasterKeyID"),
            }) or None,
            "BucketKeyEnabled": rule.get("bucketKeyEnabled"),
        }))
    return {"Rules": rules} if rules else None


def _block(value: dict[str, Any]) -> dict[str, Any]:
    return {name: bool(value.get(name[0].lower() + name[1:])) for name in BLOCK_SETTINGS}


def _versioning(value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    if value.get("status") in ("Enabled", "Suspended"):  # "Off": never enabled
        out["Status"] = value["status"]
    if value.get("isMfaDeleteEnabled"):
        out["MFADelete"] = "Enabled"
    return out


def _logging(value: dict[str, Any]) -> dict[str, Any] | None:
    if not value.get("destinationBucketName"):
        return None
    return {"TargetBucket": value["destinationBucketName"],
            "TargetPrefix": value.get("logFilePrefix") or ""}


def _policy(value: dict[str, Any]) -> Any:
    text = value.get("policyText")
    return None if text is None else json.loads(text)


# Supplementary configuration name -> (evidence field, normaliser)
_SETTINGS = {
    "ServerSideEncryptionConfiguration": ("encryption", _encryption),
    "PublicAccessBlockConfiguration": ("public_access_block", _block),
    "BucketVersioningConfiguration": ("versioning", _versioning),
    "BucketLoggingConfiguration": ("logging", _logging),
    "BucketPolicy": ("policy", _policy),
}


def settings(item: dict[str, Any]) -> dict[str, Any]:
    """The evidence fields that this item holds, in the direct calls' shapes. A setting that
    the item lacks or that does not parse is left out, to be read directly."""
    supplementary = item.get("supplementaryConfiguration") or {}
    fields: dict[str, Any] = {}
    for name, (field, normalise) in _SETTINGS.items():
        if name not in supplementary:
            continue
        try:
            fields[field] = normalise(_loads(supplementary[name]))
        except (ValueError, TypeError, AttributeError, RecursionError):
            continue
    return fields


def provenance(item: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """What an auditor needs to know about evidence taken from Config: when Config captured the
    item, and which settings came from it."""
    return {"capture_time": jsonable(item.get("configurationItemCaptureTime")),
            "fields": sorted(fields)}
