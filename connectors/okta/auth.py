"""Credentials of an Okta source: an SSWS API token from the environment, or an OAuth 2.0
service app that signs a client assertion with its private key (private_key_jwt) and trades it
at the org authorization server for an access token of the read scopes.

DPoP-bound tokens are not supported: a service app must leave "Require Demonstrating Proof of
Possession" off, else the token endpoint refuses with invalid_dpop_proof, named in the error."""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from connectors.http.auth import CredentialError, HeaderAuth
from connectors.okta.settings import Settings

# A token that expires within this many seconds is renewed before it is used.
_RENEW_BEFORE = 300
# Okta refuses client assertions that live longer than an hour.
_ASSERTION_LIFETIME = 300
_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_auth(settings: Settings) -> HeaderAuth:
    token = os.environ.get(settings.token_env, "").strip()
    if not token:
        raise CredentialError(f"no Okta API token: {settings.token_env} is not set (or set "
                              "client_id and private_key_file for an OAuth service app)")
    return HeaderAuth("Authorization", f"SSWS {token}")


class ServiceAppAuth:
    """Bearer tokens of a service app, obtained with the client-credentials grant through
    `session` (pinned to the source's trust) and renewed before they expire or after a 401."""

    def __init__(self, settings: Settings, session: requests.Session) -> None:
        assert settings.client_id is not None and settings.private_key_file is not None
        self._client_id = settings.client_id
        self._key = load_pem_private_key(settings.private_key_file.read_bytes(), password=None)
        # Okta takes RS256 for RSA keys and ES256 for P-256 ones.
        self._algorithm = "ES256" if isinstance(self._key, ec.EllipticCurvePrivateKey) else "RS256"
        self._kid = settings.key_id
        self._scopes = " ".join(settings.scopes)
        self._endpoint = f"{settings.org_url}/oauth2/v1/token"
        self._timeout = settings.timeout
        self._session = session
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def apply(self, headers: dict[str, str]) -> None:
        with self._lock:
            if self._token is None or self._expires - time.time() < _RENEW_BEFORE:
                self._renew()
            headers["Authorization"] = f"Bearer {self._token}"

    def refresh(self, rejected: str | None) -> bool:
        """A 401 with a token believed valid (revoked, say): a new one once; a token another
        listing renewed since is kept."""
        with self._lock:
            if rejected == f"Bearer {self._token}":
                self._token = None
        return True

    def _assertion(self) -> str:
        now = int(time.time())
        claims = {"iss": self._client_id, "sub": self._client_id, "aud": self._endpoint,
                  "iat": now, "exp": now + _ASSERTION_LIFETIME, "jti": uuid.uuid4().hex}
        headers = {"kid": self._kid} if self._kid else None
        try:
            return jwt.encode(claims, self._key, algorithm=self._algorithm, headers=headers)
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise CredentialError(f"the service app's key cannot sign: {exc}") from exc

    def _renew(self) -> None:
        form = {"grant_type": "client_credentials", "scope": self._scopes,
                "client_assertion_type": _ASSERTION_TYPE, "client_assertion": self._assertion()}
        try:
            answer = self._session.post(self._endpoint, data=form, timeout=self._timeout,
                                        headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise CredentialError(f"{self._endpoint}: no answer: {exc}") from exc
        body: Any
        try:
            body = answer.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CredentialError(f"{self._endpoint}: HTTP {answer.status_code}, not a token "
                                  "answer")
        if answer.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise CredentialError(f"{self._endpoint}: HTTP {answer.status_code} "
                                  f"{body.get('error', '')}: {body.get('error_description', '')}")
        self._token = body["access_token"]
        lifetime = body.get("expires_in")
        self._expires = time.time() + (float(lifetime) if isinstance(lifetime, int | float)
                                       else 3600)
