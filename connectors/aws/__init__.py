"""The AWS connector: streams IAM, IAM Identity Center, S3, EC2, EBS, CloudTrail, KMS, RDS,
Config, GuardDuty and VPC flow-log configuration of one account as resources. It never
judges."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterator
from functools import partial

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from collector.model import ALL_REGIONS, CollectionError, Resource, Scope
from connectors.aws.fetch import describe
from connectors.aws.services import SERVICES, Service
from connectors.aws.session import AwsSession, CallObserver
from connectors.aws.settings import Settings
from connectors.streams import interleave

__all__ = ["Settings", "collect"]
log = logging.getLogger("annexa.connectors.aws")


def _load_services() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("svc_"):
            importlib.import_module(f"{__name__}.{info.name}")


class SourceUnreachable(RuntimeError):
    """The account could not be identified: nothing can be collected from this source."""


def account_scope(session: AwsSession) -> Scope:
    sts = session.client("sts", session.settings.regions[0])
    try:
        identity = sts.get_caller_identity()
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise SourceUnreachable(f"sts:GetCallerIdentity failed: {describe(exc)}") from exc
    account = identity["Account"]
    partition = identity["Arn"].split(":")[1]
    # Each service lists its kinds whole, in every region collected (or fails with an error).
    kinds = tuple(kind for svc in SERVICES for kind in svc.kinds)
    return Scope(provider="aws", id=account, key=f"arn:{partition}:iam::{account}:root",
                 kinds=kinds)


def collect(
    settings: Settings, observer: CallObserver | None = None
) -> Iterator[Scope | Resource | CollectionError]:
    """Yield the account's Scope first, then every resource of the account, and a
    CollectionError for each service and region that could not be read. Raises
    SourceUnreachable when the account itself is out of reach."""
    _load_services()
    try:
        session = AwsSession(settings, observer)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise SourceUnreachable(
            f"sts:AssumeRole {settings.role_arn} failed: {describe(exc)}") from exc
    scope = account_scope(session)
    yield scope
    reads = [(svc, region) for svc in SERVICES
             for region in (settings.regions if svc.regional else settings.regions[:1])]
    # Clients made one after another, before any response is parsed, pack their service models
    # together in memory: made as each task starts, they interleave with short-lived responses
    # and the process keeps about 13 MB more at its peak (bench/aws_scale.py, N=1000).
    for svc, region in reads:
        session.client(svc.name, region)
    tasks = [partial(_service_items, svc, session, scope, region) for svc, region in reads]
    yield from interleave(tasks, settings.workers)


def _service_items(svc: Service, session: AwsSession, scope: Scope,
                   region: str) -> Iterator[Resource | CollectionError]:
    where = region if svc.regional else ALL_REGIONS
    try:
        yield from svc.fetch(session, scope, region)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        yield scope.error(svc.name, where, svc.kinds, describe(exc))
    except Exception as exc:  # an answer this code did not expect: that service fails alone
        log.exception("reading %s in %s", svc.name, region)
        yield scope.error(svc.name, where, svc.kinds, f"unexpected {describe(exc)}")
