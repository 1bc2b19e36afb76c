"""boto3 sessions and clients: the standard credential chain, optional assume-role, and
botocore's adaptive retries so that throttling slows us down instead of failing the run."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import Loader

from connectors.aws.settings import Settings

# Called with (service, operation, http_status, retries) after every API call.
CallObserver = Callable[[str, str, int, int], None]

# The operations the connector calls, by service. botocore keeps the whole API of every service
# it makes a client for (EC2's alone is about 12 MB of Python objects): clients of these
# services get a model trimmed to these operations and the shapes they reach, which took about
# 30 MB off the peak RSS of `annexa collect` (bench/aws_scale.py). A client has no method for
# an operation left out here: add every operation a service module calls. HeadBucket and
# CreateSession are called by botocore itself (S3 region redirects, S3 Express). STS is left
# whole: botocore's credential providers call it too.
OPERATIONS: dict[str, frozenset[str]] = {
    "iam": frozenset({"GenerateCredentialReport", "GetCredentialReport", "GetAccountSummary",
                      "GetAccountPasswordPolicy", "GetAccountAuthorizationDetails"}),
    "s3": frozenset({"ListBuckets", "GetBucketLocation", "GetBucketEncryption",
                     "GetPublicAccessBlock", "GetBucketVersioning", "GetBucketLogging",
                     "GetBucketPolicy", "HeadBucket", "CreateSession"}),
    "s3control": frozenset({"GetPublicAccessBlock"}),
    "ec2": frozenset({"DescribeSecurityGroups", "DescribeVolumes", "GetEbsEncryptionByDefault",
                      "GetEbsDefaultKmsKeyId", "DescribeFlowLogs", "DescribeVpcs"}),
    "kms": frozenset({"ListAliases", "ListKeys", "DescribeKey", "GetKeyRotationStatus"}),
    "rds": frozenset({"DescribeDBInstances"}),
    "config": frozenset({"DescribeConfigurationRecorders",
                         "DescribeConfigurationRecorderStatus", "BatchGetResourceConfig"}),
    "cloudtrail": frozenset({"DescribeTrails", "GetTrailStatus", "GetEventSelectors"}),
    "guardduty": frozenset({"ListDetectors", "GetDetector"}),
    "sso-admin": frozenset({"ListInstances", "ListPermissionSets", "DescribePermissionSet",
                            "ListManagedPoliciesInPermissionSet",
                            "ListCustomerManagedPolicyReferencesInPermissionSet",
                            "GetInlinePolicyForPermissionSet",
                            "ListAccountsForProvisionedPermissionSet", "ListAccountAssignments"}),
    "identitystore": frozenset({"ListUsers", "ListGroups", "ListGroupMemberships"}),
    "organizations": frozenset({"DescribeOrganization", "ListAccounts", "ListRoots",
                                "ListAccountsForParent", "ListOrganizationalUnitsForParent",
                                "ListPolicies", "DescribePolicy", "ListTargetsForPolicy"}),
}


def _shape_refs(shape: dict[str, Any]) -> list[str]:
    refs = [shape[key]["shape"] for key in ("member", "key", "value") if key in shape]
    return refs + [member["shape"] for member in shape.get("members", {}).values()]


def trim_model(model: dict[str, Any], operations: frozenset[str]) -> None:
    """Keep, in place, only `operations` and the shapes they reach. In place, because botocore's
    loader caches the same dict under two keys."""
    kept = {name: op for name, op in model["operations"].items() if name in operations}
    shapes = model["shapes"]
    reached: set[str] = set()
    pending = [ref["shape"] for op in kept.values()
               for ref in [op.get("input"), op.get("output"), *op.get("errors", [])] if ref]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending.extend(_shape_refs(shapes[name]))
    model["operations"] = kept
    model["shapes"] = {name: shapes[name] for name in reached}


class _TrimmingLoader(Loader):
    """botocore's loader, handing out service models trimmed to OPERATIONS."""

    def load_service_model(self, service_name: str, type_name: str,
                           api_version: str | None = None) -> Any:
        model = super().load_service_model(service_name, type_name, api_version)
        if type_name == "service-2" and service_name in OPERATIONS:
            trim_model(model, OPERATIONS[service_name])
        return model


def _botocore_session(profile: str | None) -> botocore.session.Session:
    session = botocore.session.Session(profile=profile)
    # As botocore's own create_loader does, with AWS_DATA_PATH's extra model directories.
    data_path = session.get_config_variable("data_path")
    session.register_component("data_loader", _TrimmingLoader(
        extra_search_paths=data_path.split(os.pathsep) if data_path else None))
    return session


class AwsSession:
    """Caches one client per (service, region) for the duration of one collection."""

    def __init__(self, settings: Settings, observer: CallObserver | None = None) -> None:
        self.settings = settings
        self._observer = observer
        self._config = Config(
            retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
            max_pool_connections=20,
            connect_timeout=10,
            read_timeout=60,
        )
        base = boto3.Session(botocore_session=_botocore_session(settings.profile))
        for role_arn, external_id in ((settings.via_role_arn, settings.via_external_id),
                                      (settings.role_arn, settings.external_id)):
            if role_arn:
                base = self._assume(base, role_arn, external_id)
        self._session = base
        self._clients: dict[tuple[str, str], Any] = {}
        # boto3 sessions are not thread-safe when creating clients; clients themselves are.
        self._lock = threading.Lock()

    def _assume(self, base: boto3.Session, role_arn: str,
                external_id: str | None) -> boto3.Session:
        settings = self.settings
        sts = base.client("sts", endpoint_url=settings.endpoint_url, config=self._config,
                          region_name=settings.regions[0])
        params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "annexa"}
        if external_id:
            params["ExternalId"] = external_id
        creds = sts.assume_role(**params)["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            botocore_session=_botocore_session(None),
        )

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            return self._clients.get(key) or self._new_client(key)

    def _new_client(self, key: tuple[str, str]) -> Any:
        service, region = key
        client = self._session.client(
            service, region_name=region, endpoint_url=self.settings.endpoint_url,
            config=self._config,
        )
        if self._observer is not None:
            client.meta.events.register("after-call", self._after_call)
        self._clients[key] = client
        return client

    def _after_call(self, http_response: Any, parsed: Any, model: Any, **_: Any) -> None:
        assert self._observer is not None
        meta = parsed.get("ResponseMetadata", {}) if isinstance(parsed, dict) else {}
        self._observer(
            model.service_model.service_name,
            model.name,
            getattr(http_response, "status_code", 0),
            int(meta.get("RetryAttempts", 0)),
        )
