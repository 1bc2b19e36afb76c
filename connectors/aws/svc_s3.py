"""S3: the account-level public access block, and every bucket with the settings that decide
whether its data is encrypted, exposed, recoverable and logged.

ListBuckets is global, so both services run once. Each bucket's settings are read from its own
region. There is no bulk API for bucket settings: a bucket costs one call per setting.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from collector.model import Resource, Scope
from connectors.aws.fetch import detail, error_code, jsonable
from connectors.aws.services import service
from connectors.aws.session import AwsSession

# The largest page ListBuckets accepts.
PAGE = {"PageSize": 10000}
NO_BLOCK = ("NoSuchPublicAccessBlockConfiguration",)
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


def _s3control(session: AwsSession, scope: Scope) -> Any:
    """S3 Control puts the account id in the host name ({account}.{endpoint}). An endpoint on
    an IP address or localhost (an emulator) has no such names, so there the calls go to the
    endpoint as configured."""
    client = session.client("s3control", session.settings.regions[0])
    if _is_literal_host(urlsplit(session.settings.endpoint_url or "").hostname or ""):
        prefixed = f"://{scope.id}."

        def unprefix(request: Any, **_: Any) -> None:
            request.url = request.url.replace(prefixed, "://", 1)

        client.meta.events.register("before-sign.s3-control", unprefix,
                                    unique_id="annexa-unprefix-account-host")
    return client


def _account_block(session: AwsSession, scope: Scope) -> dict[str, Any]:
    return _s3control(session, scope).get_public_access_block(AccountId=scope.id)


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


def _bucket_settings(s3: Any, name: str, data: dict[str, Any], account_blocks_all: bool) -> None:
    detail(data, "encryption", lambda: s3.get_bucket_encryption(Bucket=name),
           absent=("ServerSideEncryptionConfigurationNotFoundError",),
           pick=lambda r: r["ServerSideEncryptionConfiguration"])
    # Settings the account already blocks cannot be loosened per bucket: reading the bucket's
    # own block would decide nothing.
    if not account_blocks_all:
        detail(data, "public_access_block", lambda: s3.get_public_access_block(Bucket=name),
               absent=NO_BLOCK, pick=lambda r: r["PublicAccessBlockConfiguration"])
    detail(data, "versioning", lambda: s3.get_bucket_versioning(Bucket=name),
           pick=lambda r: {k: r[k] for k in ("Status", "MFADelete") if k in r})
    detail(data, "logging", lambda: s3.get_bucket_logging(Bucket=name),
           pick=lambda r: r.get("LoggingEnabled"))
    # The policy text is kept because checks judge its statements (public grants, TLS-only).
    detail(data, "policy", lambda: s3.get_bucket_policy(Bucket=name),
           absent=("NoSuchBucketPolicy",), pick=_policy)


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
    for page in home.get_paginator("list_buckets").paginate(PaginationConfig=PAGE):
        for bucket in page["Buckets"]:
            name = bucket["Name"]
            data = jsonable({**bucket, **account})
            bucket_region = regions.of(bucket, data)
            # Without its region, botocore follows S3's redirect from the home region.
            s3 = session.client("s3", bucket_region) if bucket_region else home
            _bucket_settings(s3, name, data, account_blocks_all)
            yield scope.resource("aws.s3.bucket", f"arn:{_partition(scope)}:s3:::{name}", data,
                                 bucket_region or "global")
