"""A GitHub App's installation token: a JWT signed with the App's private key (RS256) buys a
token for one installation (POST /app/installations/{id}/access_tokens) that lasts an hour. It
is renewed before it expires, and after a 401 unless another listing renewed it already."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import jwt

from connectors.http import HttpClient, HttpError, parse_json
from connectors.http.auth import CredentialError

# A token that expires within this many seconds is renewed before it is used.
_RENEW_BEFORE = 300
# GitHub refuses a JWT that lives longer than 10 minutes, and clocks drift: issued a minute
# in the past, expiring nine minutes on.
_JWT_BACKDATE, _JWT_LIFETIME = 60, 540


class InstallationAuth:
    def __init__(self, app_id: int, private_key_file: Path, installation_id: int,
                 client: HttpClient) -> None:
        self._app_id, self._installation_id = app_id, installation_id
        self._key = private_key_file.read_text(encoding="utf-8")
        self._client = client  # the API without credentials of its own
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if self._token is None or self._expires - time.time() < _RENEW_BEFORE:
                self._renew()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self, rejected: str | None) -> bool:
        with self._lock:
            if self._token is not None and rejected == f"Bearer {self._token}":
                self._token = None
        return True

    def app_jwt(self) -> str:
        now = int(time.time())
        try:
            return jwt.encode({"iat": now - _JWT_BACKDATE, "exp": now + _JWT_LIFETIME,
                               "iss": str(self._app_id)}, self._key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise CredentialError(f"the GitHub App's private key cannot sign: {exc}") from exc

    def _renew(self) -> None:
        operation = "apps.createInstallationAccessToken"
        try:
            response = self._client.request(
                "POST", f"app/installations/{self._installation_id}/access_tokens",
                operation=operation, headers={"Authorization": f"Bearer {self.app_jwt()}"})
            answer = parse_json(response, operation)
        except HttpError as exc:
            raise CredentialError(f"no installation token for app {self._app_id}, "
                                  f"installation {self._installation_id}: {exc}") from exc
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise CredentialError(f"{operation}: the answer holds no token")
        try:
            self._expires = datetime.fromisoformat(answer["expires_at"]).timestamp()
        except (KeyError, TypeError, ValueError):
            self._expires = time.time() + 3600  # the lifetime GitHub documents
        self._token = token
