"""Cloud Asset Inventory through google-cloud-asset's AssetServiceClient (REST transport), whose
HTTP goes through our HttpClient: the same retries on 429 RESOURCE_EXHAUSTED and 5xx, TLS
pinned to the source's ca_bundle, bounded answers, token renewal after a 401, and every call
counted for the observer. The library builds the requests, signs its own JWTs and parses the
pages; we only carry them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import requests

from connectors.gcp.settings import Settings
from connectors.http import HttpClient, MalformedResponse, Observer, pinned_session
from connectors.http.auth import GoogleCredentialsAuth

OPERATION = "assets.list"


class CredentialsUnavailable(RuntimeError):
    """No credentials to call Google with: nothing of this source can be read."""


class _Through:
    """What the REST transport takes for its AuthorizedSession: it calls `get` (the one
    method ListAssets uses) and reads status, headers and content of the answer."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def get(self, url: str, *, timeout: float | None = None,
            headers: Mapping[str, str] | None = None,
            params: Sequence[tuple[str, Any]] | None = None) -> requests.Response:
        return self._client.request("GET", url, operation=OPERATION, headers=headers,
                                    params=params)  # type: ignore[arg-type]


def credentials(settings: Settings) -> Any:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
    from google.cloud.asset_v1.services.asset_service.transports.base import (
        AssetServiceTransport,
    )
    from google.oauth2 import service_account

    scopes = AssetServiceTransport.AUTH_SCOPES
    try:
        if settings.credentials_file is not None:
            # The key's own token_uri is kept: it is where any token exchange goes.
            found = service_account.Credentials.from_service_account_file(
                str(settings.credentials_file), default_scopes=scopes)
        else:
            found, _ = google.auth.default(default_scopes=scopes)
    except DefaultCredentialsError as exc:
        where = settings.credentials_file or "Application Default Credentials"
        raise CredentialsUnavailable(f"{where}: {exc}") from exc
    except (GoogleAuthError, ValueError, KeyError) as exc:
        raise CredentialsUnavailable(
            f"{settings.credentials_file}: not usable credentials: {exc}") from exc
    return found


class Inventory:
    """ListAssets at one parent after another, page by page, as dicts in the REST wire
    format (camelCase, as the API documents them)."""

    def __init__(self, settings: Settings, observer: Observer | None) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import asset_v1
        from google.cloud.asset_v1.services.asset_service.transports.base import (
            DEFAULT_CLIENT_INFO,
        )

        self._settings = settings
        self._asset_v1 = asset_v1
        options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.api_endpoint \
            else None
        self._client = asset_v1.AssetServiceClient(credentials=credentials(settings),
                                                   transport="rest", client_options=options)
        transport = self._client._transport
        # The transport's own AuthorizedSession has already readied its credentials (a
        # service account signs its own JWTs for cloudasset, asking no token service); our
        # client applies and renews them over the source's pinned TLS.
        session = pinned_session(settings.ca_bundle)
        self.http = HttpClient(transport._host, service="cloudasset", settings=settings,
                               auth=GoogleCredentialsAuth(transport._credentials, session),
                               observer=observer, session=session)
        transport._session = _Through(self.http)
        # Its calls were bound to the old session: bind them again.
        transport._prep_wrapped_messages(DEFAULT_CLIENT_INFO)

    def pages(self, parent: str, asset_types: Sequence[str], iam: bool = False
              ) -> Iterator[list[dict[str, Any]]]:
        """The assets of `asset_types` under `parent` (their resource, or with `iam` their IAM
        policy), one page at a time. Raises HttpError; MalformedResponse for a page that
        is not a ListAssetsResponse."""
        from google.protobuf.json_format import MessageToDict, ParseError

        asset_v1 = self._asset_v1
        content = asset_v1.ContentType.IAM_POLICY if iam else asset_v1.ContentType.RESOURCE
        request = asset_v1.ListAssetsRequest(parent=parent, asset_types=list(asset_types),
                                             content_type=content,
                                             page_size=self._settings.page_size)
        try:
            pager = self._client.list_assets(request=request, retry=None,
                                             timeout=self._settings.timeout)
            for page in pager.pages:
                raw = asset_v1.ListAssetsResponse.pb(page)
                yield [MessageToDict(asset) for asset in raw.assets]
        except ParseError as exc:
            raise MalformedResponse(OPERATION, f"a page of {parent} is not a "
                                               f"ListAssetsResponse: {exc}") from exc
