"""Why a call got no answer at all, in words an operator can act on: DNS, a refused or timed-out
connection, TLS (a certificate not trusted), a proxy. It reads the failures of both client
stacks we call through: requests/urllib3 (the HTTPS connectors) and botocore (AWS)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
from botocore import exceptions as botocore_errors

# The failures of a call that never got an answer; anything else had one.
_NO_ANSWER: tuple[type[BaseException], ...] = (
    requests.ConnectionError, requests.Timeout,
    botocore_errors.EndpointConnectionError, botocore_errors.SSLError,
    botocore_errors.ProxyConnectionError, botocore_errors.ConnectTimeoutError,
    botocore_errors.ReadTimeoutError, botocore_errors.ConnectionClosedError,
)
_PROXY: tuple[type[BaseException], ...] = (requests.exceptions.ProxyError,
                                           botocore_errors.ProxyConnectionError)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps, by any of the ways requests, urllib3 and botocore
    wrap them (explicit causes, `reason`, the first argument, botocore's `error`)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = [current.__cause__, current.__context__, getattr(current, "reason", None),
                 getattr(current, "kwargs", {}).get("error") if isinstance(
                     getattr(current, "kwargs", None), dict) else None,
                 *(arg for arg in current.args[:1])]
        pending.extend(e for e in inner if isinstance(e, BaseException))


def _where(chain: list[BaseException]) -> str:
    """host:port of what the failed call connected to (through a proxy: the proxy), else of
    the endpoint it went to, when the failure says."""
    for exc in chain:
        connection = getattr(exc, "conn", None)
        host, port = getattr(connection, "host", None), getattr(connection, "port", None)
        if isinstance(host, str) and port:
            return f"{host}:{port}"
    for exc in chain:
        request = getattr(exc, "request", None)
        url = getattr(request, "url", None) if request is not None else None
        kwargs = getattr(exc, "kwargs", None)
        if url is None and isinstance(kwargs, dict):
            url = kwargs.get("endpoint_url") or kwargs.get("proxy_url")
        if isinstance(url, str) and "://" in url:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
            return f"{parts.hostname}:{port}" if port else str(parts.hostname)
        host, port = getattr(exc, "host", None), getattr(exc, "port", None)
        if isinstance(host, str) and port:
            return f"{host}:{port}"
    return "the endpoint"


def unreachable(exc: BaseException) -> str | None:
    """The cause, named, when `exc` (or what it wraps) is a call that got no answer; None when
    an answer came (a refusal, an error status)."""
    chain = list(_chain(exc))
    if not any(isinstance(e, _NO_ANSWER) for e in chain):
        return None
    where = _where(chain)
    proxy = next((e for e in chain if isinstance(e, _PROXY)), None)
    cause = _cause(chain, where)
    return f"proxy: {cause}" if proxy is not None else cause


def _cause(chain: list[BaseException], where: str) -> str:
    for exc in chain:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {exc.verify_message} ({where})"
        if isinstance(exc, socket.gaierror):
            return f"DNS: cannot resolve {where.rsplit(':', 1)[0]}: {exc.strerror}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused to {where}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS: {exc.reason or exc} ({where})"
        if isinstance(exc, TimeoutError | socket.timeout | requests.Timeout
                      | botocore_errors.ConnectTimeoutError | botocore_errors.ReadTimeoutError):
            return f"timed out waiting for {where}"
        if isinstance(exc, ConnectionResetError):
            return f"connection reset by {where}"
    text = str(chain[-1]) or type(chain[-1]).__name__
    return f"no answer from {where}: {text}"
