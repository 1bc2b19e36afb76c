"""Credentials for HttpClient: a fixed header (API tokens), an azure-identity credential, or
google-auth credentials. The providers' libraries obtain and renew the tokens; this only asks
them for one and puts it on the request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import requests

from connectors.http.tls import trust

# A token that expires within this many seconds is renewed before it is used.
_RENEW_BEFORE = 300


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

    def refresh(self) -> bool:
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

    def refresh(self) -> bool:
        """A 401 with a token we believed valid: ask again once (the credential may have
        renewed it meanwhile); a second 401 is final."""
        with self._lock:
            self._token = None
        return True


def default_azure_credential(tenant_id: str, authority: str, *, instance_discovery: bool,
                             ca_bundle: Path | str | None) -> Any:
    """azure-identity's DefaultAzureCredential chain (environment, workload identity, managed
    identity, the Azure CLI...) allowed to ask for tokens of `tenant_id` at `authority`, its
    token requests verified with the source's trust. Instance discovery (MSAL asking
    login.microsoftonline.com whether the authority is a known one) is for the clouds' own
    login hosts: an overridden authority host, private or a test's fake, turns it off."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(authority=authority,
                                  disable_instance_discovery=not instance_discovery,
                                  additionally_allowed_tenants=[tenant_id],
                                  connection_verify=trust(ca_bundle))


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

    def refresh(self) -> bool:
        with self._lock:
            self._renew()
        return True

    def _renew(self) -> None:
        from google.auth.exceptions import GoogleAuthError

        try:
            self._credentials.refresh(self._request)
        except GoogleAuthError as exc:
            raise CredentialError(_first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    """azure-identity's messages run over many lines of troubleshooting links. Of the
    credentials that DefaultAzureCredential lists as attempted, the one that failed (rather
    than was not configured) says why; if none did, the first one says what is missing."""
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tried = [line for line in lines[1:] if line.endswith(".") and ": " in line
             and not line.startswith(("To mitigate", "Visit", "Attempted"))]
    cause = [line for line in tried if "failed" in line.lower()] or tried
    return f"{type(exc).__name__}: {' '.join(lines[:1] + cause[:1])}"
