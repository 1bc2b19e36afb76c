"""Credentials for HttpClient: a fixed header (API tokens), an azure-identity credential, or
google-auth credentials. The providers' libraries obtain and renew the tokens; this only asks
them for one and puts it on the request."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import requests

# A token that expires within this many seconds is renewed before it is used.
_RENEW_BEFORE = 300
# "EnvironmentCredential: Authentication failed: AADSTS7000215: Invalid client secret..."
_ATTEMPTED = re.compile(r"^\w+Credential: ")


class CredentialError(Exception):
    """No token could be had: the credential chain found nothing, or the token service
    refused (wrong secret, unknown tenant, disabled account). The message is the library's."""


class HeaderAuth:
    """A secret sent as one header (`Authorization: SSWS ...`, `Bearer ...`); nothing to
    renew, so a 401 is final."""

    def __init__(self, name: str, value: str) -> None:
        self._name, self._value = name, value

    def apply(self, headers: dict[str, str]) -> None:
        headers[self._name] = self._value

    def refresh(self, rejected: str | None) -> bool:
        return False


class TokenCredentialAuth:
    """An azure-identity TokenCredential (DefaultAzureCredential and the like) for one scope,
    such as `https://management.azure.com/.default`. With `tenant_id`, every token is asked
    of that tenant, whatever tenant the credential was configured with (AZURE_TENANT_ID); the
    credential must allow it (`additionally_allowed_tenants`)."""

    def __init__(self, credential: Any, scope: str, tenant_id: str | None = None) -> None:
        self._credential, self._scope = credential, scope
        self._options = {"tenant_id": tenant_id} if tenant_id else {}
        self._token: Any = None
        self._lock = threading.Lock()

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if self._token is None or self._token.expires_on - time.time() < _RENEW_BEFORE:
                try:
                    self._token = self._credential.get_token(self._scope, **self._options)
                except Exception as exc:  # azure-identity's errors share no base worth naming
                    raise CredentialError(_first_line(exc)) from exc
            headers["Authorization"] = f"Bearer {self._token.token}"

    def refresh(self, rejected: str | None) -> bool:
        """A 401 with a token we believed valid: ask again once (the credential may have
        renewed it meanwhile); a second 401 is final. A token another listing renewed since
        is kept."""
        with self._lock:
            if self._token is not None and rejected == f"Bearer {self._token.token}":
                self._token = None
        return True


class GoogleCredentialsAuth:
    """google-auth credentials (a service account, with or without domain-wide delegation;
    Application Default Credentials). Token requests go through `session`, whose TLS is the
    source's."""

    def __init__(self, credentials: Any, session: requests.Session) -> None:
        from google.auth.transport.requests import Request

        self._credentials = credentials
        self._request = Request(session)
        self._lock = threading.Lock()

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if not self._credentials.valid:
                self._renew()
            self._credentials.apply(headers)

    def refresh(self, rejected: str | None) -> bool:
        """After a 401. Listings that run side by side are refused together: the first to ask
        renews the token, the others retry with it."""
        with self._lock:
            current: dict[str, str] = {}
            self._credentials.apply(current)
            if current.get("authorization", current.get("Authorization")) == rejected:
                self._renew()
        return True

    def _renew(self) -> None:
        from google.auth.exceptions import GoogleAuthError

        try:
            self._credentials.refresh(self._request)
        except GoogleAuthError as exc:
            raise CredentialError(_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    """azure-identity's messages run over many lines of troubleshooting links, and a
    credential chain's (DefaultAzureCredential) first line says only that it failed: the cause
    is in the lines naming each credential it attempted, which are kept instead. google-auth's
    RefreshError carries the token service's whole answer after its message."""
    message = exc.args[0] if len(exc.args) > 1 and isinstance(exc.args[0], str) else exc
    text = str(message).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines()]
    attempted = [line for line in lines[1:] if _ATTEMPTED.match(line)]
    return f"{type(exc).__name__}: {'; '.join(attempted) if attempted else lines[0]}"
