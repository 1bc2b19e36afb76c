"""boto3 sessions and clients: the standard credential chain, optional assume-role, and
botocore's adaptive retries so that throttling slows us down instead of failing the run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from connectors.aws.settings import Settings

# Called with (service, operation, http_status, retries) after every API call.
CallObserver = Callable[[str, str, int, int], None]


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
        base = boto3.Session(profile_name=settings.profile)
        if settings.role_arn:
            base = self._assume(base, settings)
        self._session = base
        self._clients: dict[tuple[str, str], Any] = {}
        # boto3 sessions are not thread-safe when creating clients; clients themselves are.
        self._lock = threading.Lock()

    def _assume(self, base: boto3.Session, settings: Settings) -> boto3.Session:
        sts = base.client("sts", endpoint_url=settings.endpoint_url, config=self._config,
                          region_name=settings.regions[0])
        params: dict[str, Any] = {"RoleArn": settings.role_arn, "RoleSessionName": "annexa"}
        if settings.external_id:
            params["ExternalId"] = settings.external_id
        creds = sts.assume_role(**params)["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
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
