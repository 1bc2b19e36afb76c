"""S3: the account-level public access block, and every bucket with the settings that decide
whether its data is encrypted, exposed, recoverable and logged.

ListBuckets is global, so both services run once. S3 itself has no bulk API for bucket
settings: read directly, a bucket costs one call per setting, in its own region. Where AWS
Config continuously records S3 buckets, their settings come instead from Config's
configuration items, 100 buckets per call (BatchGetResourceConfig), normalised into the shapes
that the direct calls return; only a setting that an item lacks is read directly. Either way the
checks see the same evidence keys.
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from collector.model import Resource, Scope
from connectors.aws import s3_via_config as via_config
from connectors.aws.fetch import detail, error_code, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

# The largest page ListBuckets accepts.
PAGE = {"PageSize": 10000}
NO_BLOCK = ("NoSuchPublicAccessBlockConfiguration",)
# Bucket settings read directly at once. Measured with bench/aws_scale.py at N=1000: 4 beats
# 1 (serial round trips) and 8 (threads contend with the pipeline for the interpreter).
DIRECT_READERS = 4
BLOCK_SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                  "RestrictPublicBuckets")


def _partition(scope: Scope) -> str:
    return scope.key.split(":")[1]


def _is_literal_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def s3control_client(session: AwsSession, account: str) -> Any:
    """S3 Control puts the account id in the host name ({account}.{endpoint}). An endpoint on
    an IP address or localhost (an emulator) has no such names, so there the calls go to the
    endpoint as configured: the source's endpoint_url, or botocore's own setting of it
    (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3_CONTROL, the profile's endpoint_url), which the
    client resolved."""
    client = session.client("s3control", session.settings.regions[0])
    if _is_literal_host(urlsplit(client.meta.endpoint_url or "").hostname or ""):
        prefixed = f"://{account}."

        def unprefix(request: Any, **_: Any) -> None:
            request.url = request.url.replace(prefixed, "://", 1)

        client.meta.events.register("before-sign.s3-control", unprefix,
                                    unique_id="annexa-unprefix-account-host")
    return client


def _account_block(session: AwsSession, scope: Scope) -> dict[str, Any]:
    return s3control_client(session, scope.id).get_public_access_block(AccountId=scope.id)


@service("s3control", kinds=("aws.s3.account_public_access_block",), regional=False)
def account_public_access_block(
    session: AwsSession, scope: Scope, region: str
) -> Iterator[Resource]:
    try:
        block = _account_block(session, scope)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if error_code(exc) not in NO_BLOCK:
            raise
        block = None
    key = f"arn:{_partition(scope)}:s3::{scope.id}:account-public-access-block"
    yield scope.resource("aws.s3.account_public_access_block", key,
                         {"public_access_block": block})


class _Regions:
    """Where each bucket lives. ListBuckets says so in BucketRegion; where it does not (an
    emulator, an older endpoint), one listing filtered by region per collected region costs far
    less than GetBucketLocation per bucket, which is left for buckets outside those regions."""

    def __init__(self, s3: Any, regions: list[str]) -> None:
        self._s3 = s3
        self._regions = regions
        self._listed: dict[str, str] | None = None

    def _list_by_region(self) -> dict[str, str]:
        listed: dict[str, str] = {}
        for region in self._regions:
            pages = self._s3.get_paginator("list_buckets").paginate(
                BucketRegion=region, PaginationConfig=PAGE)
            listed.update((b["Name"], region) for page in pages for b in page["Buckets"])
        return listed

    def of(self, bucket: dict[str, Any], data: dict[str, Any]) -> str | None:
        if bucket.get("BucketRegion"):
            return bucket["BucketRegion"]
        if self._listed is None:
            self._listed = self._list_by_region()
        if bucket["Name"] in self._listed:
            return self._listed[bucket["Name"]]
        detail(data, "location", lambda: self._s3.get_bucket_location(Bucket=bucket["Name"]),
               pick=lambda r: r.get("LocationConstraint"))
        if "location" not in data:
            return None
        location = data.pop("location")
        # A missing constraint means us-east-1; "EU" is the legacy name of eu-west-1.
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)


def _policy(response: dict[str, Any]) -> Any:
    return json.loads(response["Policy"])


def _direct(s3: Any, name: str) -> dict[str, tuple[Any, tuple[str, ...], Any]]:
    """Evidence field -> (call, error codes meaning "not set", pick) for the direct reads."""
    return {
        "encryption": (lambda: s3.get_bucket_encryption(Bucket=name),
                       ("ServerSideEncryptionConfigurationNotFoundError",),
                       lambda r: r["ServerSideEncryptionConfiguration"]),
        "public_access_block": (lambda: s3.get_public_access_block(Bucket=name), NO_BLOCK,
                                lambda r: r["PublicAccessBlockConfiguration"]),
        "versioning": (lambda: s3.get_bucket_versioning(Bucket=name), (),
                       lambda r: {k: r[k] for k in ("Status", "MFADelete") if k in r}),
        "logging": (lambda: s3.get_bucket_logging(Bucket=name), (),
                    lambda r: r.get("LoggingEnabled")),
        # The policy text is kept because checks judge its statements (public grants, TLS-only).
        "policy": (lambda: s3.get_bucket_policy(Bucket=name), ("NoSuchBucketPolicy",), _policy),
    }


@dataclass
class _Bucket:
    name: str
    region: str | None
    data: dict[str, Any]
    item: dict[str, Any] | None = None  # its AWS Config configuration item, if recorded


def _settle(bucket: _Bucket, s3: Any, account_blocks_all: bool) -> None:
    """Fill the bucket's settings: from its Config item where that holds them, else directly."""
    known = via_config.settings(bucket.item) if bucket.item else {}
    if known:
        bucket.data["aws_config"] = via_config.provenance(bucket.item or {}, known)
    for field, (call, absent, pick) in _direct(s3, bucket.name).items():
        if field in known:
            bucket.data[field] = known[field]
        # Settings the account already blocks cannot be loosened per bucket: reading the
        # bucket's own block would decide nothing.
        elif not (field == "public_access_block" and account_blocks_all):
            detail(bucket.data, field, call, absent=absent, pick=pick)


def _recording_regions(session: AwsSession) -> set[str]:
    return {region for region in session.settings.regions
            if via_config.records_buckets(session.client("config", region))}


def _attach_items(session: AwsSession, chunk: list[_Bucket], recording: set[str]) -> None:
    by_region: dict[str, list[_Bucket]] = defaultdict(list)
    for bucket in chunk:
        if bucket.region in recording:
            by_region[bucket.region].append(bucket)
    for region, buckets in by_region.items():
        try:
            items = via_config.bucket_items(session.client("config", region),
                                            [b.name for b in buckets])
        except (ClientError, BotoCoreError, ResponseParserError):
            continue  # every setting of these buckets is then read directly
        for bucket in buckets:
            bucket.item = items.get(bucket.name)


def _chunks(pages: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for page in pages:
        for bucket in page["Buckets"]:
            chunk.append(bucket)
            if len(chunk) == via_config.BATCH:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


@service("s3", kinds=("aws.s3.bucket",), regional=False)
def buckets(session: AwsSession, scope: Scope, region: str) -> Iterator[Resource]:
    # The account block overrides each bucket's own, so every bucket carries a copy of it:
    # a bucket's exposure can then be judged from its own evidence.
    account: dict[str, Any] = {}
    detail(account, "account_public_access_block", lambda: _account_block(session, scope),
           absent=NO_BLOCK, pick=lambda r: r["PublicAccessBlockConfiguration"])
    block = account.get("account_public_access_block") or {}
    account_blocks_all = all(block.get(name) for name in BLOCK_SETTINGS)

    home = session.client("s3", region)
    regions = _Regions(home, session.settings.regions)
    recording = _recording_regions(session)
    pages = home.get_paginator("list_buckets").paginate(PaginationConfig=PAGE)
    # Direct reads are one round trip each: a few at a time hide the latency, and a chunk at a
    # time keeps memory bounded.

    def settle(bucket: _Bucket) -> None:
        # Without its region, botocore follows S3's redirect from the home region.
        s3 = session.client("s3", bucket.region) if bucket.region else home
        _settle(bucket, s3, account_blocks_all)

    with ThreadPoolExecutor(DIRECT_READERS, thread_name_prefix="annexa-s3") as pool:
        for listed in _chunks(pages):
            chunk = []
            for entry in listed:
                data = jsonable({**entry, **account})
                chunk.append(_Bucket(entry["Name"], regions.of(entry, data), data))
            _attach_items(session, chunk, recording)
            for _ in pool.map(settle, chunk):  # re-raises what a read raised
                pass
            for bucket in chunk:
                yield scope.resource("aws.s3.bucket", f"arn:{_partition(scope)}:s3:::{bucket.name}",
                                     bucket.data, bucket.region or "global")
