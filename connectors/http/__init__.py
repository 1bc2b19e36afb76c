"""The HTTPS client layer shared by every connector that speaks a plain HTTPS API (Azure,
Entra ID, Google Cloud and Workspace, Okta, GitHub): a connector adds only its
authentication, its calls, and how a page becomes resources."""

from connectors.http.client import Auth, HttpClient, Observer, RateLimits, parse_json, retry_after
from connectors.http.detail import detail
from connectors.http.errors import HttpError, MalformedResponse, error_detail, reasons
from connectors.http.settings import HttpSettings
from connectors.http.tls import pin, pinned_session, trust

__all__ = [
    "Auth", "HttpClient", "HttpError", "HttpSettings", "MalformedResponse", "Observer",
    "RateLimits", "detail", "error_detail", "parse_json", "pin", "pinned_session", "reasons",
    "retry_after", "trust",
]
