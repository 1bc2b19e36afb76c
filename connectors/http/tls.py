"""Which certificates an HTTPS connector trusts, decided once and pinned so that nothing else
(requests' own environment lookup, above all) can swap it for another."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import requests

# Debian's and Red Hat's bundles of the system store, for Pythons whose OpenSSL names none.
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def trust(ca_bundle: Path | str | None = None) -> str:
    """The CA bundle to verify servers with: the source's own `ca_bundle`, else
    REQUESTS_CA_BUNDLE or SSL_CERT_FILE (or CURL_CA_BUNDLE, as requests reads it), else the
    system store, else certifi's."""
    if ca_bundle:
        return str(ca_bundle)
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "CURL_CA_BUNDLE"):
        if os.environ.get(variable):
            return os.environ[variable]
    cafile = ssl.get_default_verify_paths().cafile
    for candidate in (cafile, *_SYSTEM_BUNDLES):
        if candidate and os.path.isfile(candidate):
            return candidate
    import certifi

    return certifi.where()


class PinnedVerify:
    """A requests.Session mixin whose `verify` is final. requests lets REQUESTS_CA_BUNDLE and
    CURL_CA_BUNDLE replace a Session's `verify` on every request (Session.verify is only the
    fallback), so a source's `ca_bundle` would lose to the environment."""

    verify: Any

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(  # type: ignore[misc]
            url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings


class PinnedSession(PinnedVerify, requests.Session):
    pass


def pinned_session(ca_bundle: Path | str | None = None) -> PinnedSession:
    session = PinnedSession()
    session.verify = trust(ca_bundle)
    return session


def pin(session: requests.Session, ca_bundle: Path | str | None = None) -> requests.Session:
    """`session` (an AuthorizedSession, say) turned into a PinnedVerify one of its own class."""
    session.__class__ = type(f"Pinned{type(session).__name__}",
                             (PinnedVerify, type(session)), {})
    session.verify = trust(ca_bundle)
    return session
