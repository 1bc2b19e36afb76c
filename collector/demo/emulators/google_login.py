"""Google's OAuth 2.0 token service as google-auth calls it for a service account: the
JWT-bearer grant at the key file's `token_uri` (with `sub` for domain-wide delegation), and
self-signed JWTs sent straight to an API as bearer tokens, which google-cloud-* clients use.
Signatures are checked against the keys of the service accounts registered here."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

from collector.demo.emulators.server import FakeApi, Tokens, json_response

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth addresses its assertions to Google's endpoint whatever the key's token_uri is.
GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"


@dataclass
class Accounts:
    """Service accounts (email -> {key id: public key PEM}), who they may impersonate, and
    (where set) the only scopes that domain-wide delegation grants them, as the Admin console's
    client list does."""

    keys: dict[str, dict[str, str]] = field(default_factory=dict)
    delegates: dict[str, set[str]] = field(default_factory=dict)
    delegated_scopes: dict[str, set[str]] = field(default_factory=dict)
    tokens: Tokens = field(default_factory=Tokens)
    token_requests: int = 0

    def service_account(self, email: str, token_uri: str, project: str = "annexa-demo",
                        may_impersonate: set[str] | None = None) -> dict[str, Any]:
        """A new key for `email`: the key file's content, as the IAM API hands it out."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.keys.setdefault(email, {})[key_id] = public.decode()
        if may_impersonate:
            self.delegates.setdefault(email, set()).update(may_impersonate)
        private = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": project, "private_key_id": key_id,
                "private_key": private, "client_email": email,
                "client_id": str(secrets.randbelow(10**20)), "token_uri": token_uri,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth"}

    def verify(self, assertion: str, audience: str | list[str] | None) -> dict[str, Any]:
        """The claims of a JWT signed by a registered key; ValueError says why not."""
        from google.auth import jwt
        from google.auth.exceptions import GoogleAuthError

        try:
            unverified = jwt.decode(assertion, verify=False)
        except (GoogleAuthError, ValueError) as exc:
            raise ValueError(f"malformed JWT: {exc}") from None
        issuer = unverified.get("iss", "")
        certs = self.keys.get(issuer)
        if not certs:
            raise ValueError(f"unknown service account {issuer!r}")
        try:
            return jwt.decode(assertion, certs=certs, audience=audience)
        except (GoogleAuthError, ValueError) as exc:
            raise ValueError(f"invalid JWT signature or claims: {exc}") from None


def _oauth_error(status: int, error: str, text: str) -> Response:
    return json_response({"error": error, "error_description": text}, status)


def install(api: FakeApi, accounts: Accounts, path: str = "/token") -> str:
    """Serve the token endpoint at `path`; returns its URL, the key files' `token_uri`."""
    url = f"{api.url}{path}"

    @api.route("POST", path, name="oauth2.token")
    def token(request: Request) -> object:
        accounts.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.get_data(as_text=True)).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error(400, "unsupported_grant_type", "Invalid grant_type.")
        try:
            claims = accounts.verify(form.get("assertion", ""), [url, GOOGLE_TOKEN_ENDPOINT])
        except ValueError as exc:
            return _oauth_error(400, "invalid_grant", f"Invalid JWT: {exc}")
        subject = claims.get("sub") or claims["iss"]
        scopes = str(claims.get("scope", "")).split()
        granted = accounts.delegated_scopes.get(claims["iss"])
        if subject != claims["iss"] and (
                subject not in accounts.delegates.get(claims["iss"], set())
                or (granted is not None and not set(scopes) <= granted)):
            return _oauth_error(401, "unauthorized_client",
                                "Client is unauthorized to retrieve access tokens using this "
                                "method, or client not authorized for any of the scopes "
                                "requested.")
        access, lifetime = accounts.tokens.issue("google", subject=subject, scopes=scopes)
        return {"access_token": access, "expires_in": lifetime, "token_type": "Bearer"}

    return url


def bearer(request: Request, accounts: Accounts, audiences: list[str]) -> tuple[str,
                                                                               dict[str, Any]]:
    """("", grant) for a token from the token endpoint or a self-signed JWT for one of
    `audiences`; else (problem, {})."""
    problem, grant = accounts.tokens.grant(request, "google")
    if problem != "invalid":
        return problem, grant
    token = request.headers.get("Authorization", "").partition(" ")[2]
    try:
        claims = accounts.verify(token, audiences)
    except ValueError as exc:
        return ("expired" if "expired" in str(exc).lower() or "too early" in str(exc).lower()
                else "invalid"), {}
    return "", {"audience": "google", "subject": claims.get("sub") or claims["iss"],
                "scopes": set(str(claims.get("scope", "")).split())}
