"""The one HTTPS client that every HTTP connector calls through: timeouts, retries with backoff
on throttling and transient failures that honour the provider's own rate-limit headers, TLS
pinned to the source's trust, a bound on what an answer may cost, and a count of every call
for the api_observer and metrics."""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

import requests

from connectors.http.auth import CredentialError
from connectors.http.errors import HttpError, MalformedResponse, error_detail
from connectors.http.settings import HttpSettings
from connectors.http.tls import pinned_session

# Called with (service, operation, http_status, retries) after every call, as for AWS.
Observer = Callable[[str, str, int, int], None]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Auth(Protocol):
    """Adds credentials to a request. After a 401, `refresh(rejected)` (the Authorization that
    was refused) renews the credentials unless they changed since, and says whether a retry
    may help."""

    def apply(self, headers: dict[str, str]) -> None: ...

    def refresh(self, rejected: str | None) -> bool: ...


@dataclass(frozen=True)
class RateLimits:
    """How a provider says "slow down" beyond 429 and Retry-After.

    `remaining`/`reset` name the headers of the calls left and of when the window resets
    (`reset_format`: epoch seconds, seconds from now, or an h:mm:ss duration); when `remaining`
    falls to `reserve` the client waits for the reset before its next call instead of running
    into a 429: a reserve of the calls other workers may have in flight at once keeps them out
    of the 429 too. `throttled` recognises answers that mean the same as a 429, whatever their
    status (Google's 403 rateLimitExceeded, GitHub's secondary limits, and GitHub's GraphQL,
    which says RATE_LIMITED in a 200); `min_wait` is the least to wait after one when the
    provider names no time."""

    remaining: str | None = None
    reset: str | None = None
    reset_format: Literal["epoch", "seconds", "duration"] = "epoch"
    throttled: Callable[[requests.Response], bool] | None = None
    min_wait: float = 0.0
    reserve: int = 0


def _seconds(value: str, fmt: str, now: float) -> float | None:
    try:
        if fmt == "epoch":
            return float(value) - now
        if fmt == "seconds":
            return float(value)
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        return None
    total = 0.0
    for part in parts:
        total = total * 60 + part
    return total


def retry_after(response: requests.Response, now: float | None = None) -> float | None:
    """Retry-After as seconds (it may be a number of seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (now if now is not None else time.time()), 0.0)


class HttpClient:
    """Calls one API under `base_url`. Paths are joined to it; absolute URLs (next links) must
    stay on its origin, so that an answer cannot send our credentials to another host."""

    def __init__(self, base_url: str, *, service: str, settings: HttpSettings,
                 auth: Auth | None = None, observer: Observer | None = None,
                 limits: RateLimits = RateLimits(), session: requests.Session | None = None,
                 headers: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.service = service
        self.settings = settings
        self.auth = auth
        self.limits = limits
        self.session = session if session is not None else pinned_session(settings.ca_bundle)
        self.headers = {"Accept": "application/json", "User-Agent": "annexa",
                        **(headers or {})}
        self._observer = observer
        self._sleep = sleep
        self._pause_until = 0.0
        self._lock = threading.Lock()
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)

    def url(self, path: str) -> str:
        if "://" not in path:
            return urljoin(self.base_url, path.lstrip("/"))
        parts = urlsplit(path)
        if (parts.scheme, parts.netloc) != self._origin:
            raise MalformedResponse(self.service, f"a link leads off {self.base_url} to "
                                                  f"{parts.scheme}://{parts.netloc}")
        return path

    def get_json(self, path: str, *, operation: str, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
        return parse_json(self.request("GET", path, operation=operation, params=params,
                                       headers=headers), operation)

    def post_json(self, path: str, *, operation: str, body: Any,
                  params: Mapping[str, Any] | None = None) -> Any:
        return parse_json(self.request("POST", path, operation=operation, params=params,
                                       json_body=body), operation)

    def request(self, method: str, path: str, *, operation: str,
                params: Mapping[str, Any] | None = None, json_body: Any = None,
                headers: Mapping[str, str] | None = None,
                expect: Collection[int] = ()) -> requests.Response:
        """The answer of a successful call (or one whose status is in `expect`, such as a 404
        that means "none"). Throttling and transient failures are retried; anything else
        raises HttpError naming `operation`."""
        url = self.url(path)
        retries, refreshed = 0, False
        while True:
            self._wait_for_window()
            try:
                response = self._send(method, url, params, json_body, headers, operation)
            except requests.exceptions.SSLError as exc:
                self._observe(operation, 0, retries)
                raise HttpError(operation, 0, "TLS", _cause(exc)) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if retries + 1 >= self.settings.max_attempts:
                    self._observe(operation, 0, retries)
                    raise HttpError(operation, 0, type(exc).__name__, _cause(exc)) from exc
                retries += 1
                self._sleep(self._backoff(retries))
                continue
            status = response.status_code
            throttled = self._throttled(response)
            if (status < 400 or status in expect) and not throttled:
                self._observe(operation, status, retries)
                self._note_window(response)
                return response
            if status == 401 and self.auth is not None and not refreshed and self.auth.refresh(
                    response.request.headers.get("Authorization")):
                refreshed, retries = True, retries + 1
                continue
            wait = self._retry_wait(response, retries + 1, throttled)
            if wait is None or retries + 1 >= self.settings.max_attempts:
                self._observe(operation, status, retries)
                code, message = error_detail(response)
                if wait is not None:
                    message = f"{message} (still refused after {retries + 1} attempts)"
                raise HttpError(operation, status, code, message)
            if wait > self.settings.max_retry_wait:
                self._observe(operation, status, retries)
                code, message = error_detail(response)
                raise HttpError(operation, status, code, f"{message} (the API asks to wait "
                                f"{wait:.0f}s, more than max_retry_wait "
                                f"{self.settings.max_retry_wait:.0f}s)")
            retries += 1
            self._sleep(wait)

    def _send(self, method: str, url: str, params: Mapping[str, Any] | None, json_body: Any,
              headers: Mapping[str, str] | None, operation: str) -> requests.Response:
        sent = dict(self.headers)
        if headers:
            sent.update(headers)
        if self.auth is not None:
            try:
                self.auth.apply(sent)
            except CredentialError as exc:
                raise HttpError(operation, 401, "CredentialUnavailable", str(exc)) from exc
        timeout = self.settings.timeout
        response = self.session.request(method, url, params=params, json=json_body,
                                        headers=sent, timeout=(min(timeout, 10.0), timeout),
                                        stream=True)
        try:
            body = response.raw.read(self.settings.max_response_bytes + 1, decode_content=True)
        except Exception as exc:  # a connection cut mid-body is a transient failure
            response.close()
            raise requests.ConnectionError(f"the answer was cut off: {exc}") from exc
        finally:
            response.close()
        if len(body) > self.settings.max_response_bytes:
            raise MalformedResponse(operation, f"the answer exceeds max_response_bytes "
                                         f"({self.settings.max_response_bytes})",
                                    response.status_code)
        response._content = body
        response._content_consumed = True
        return response

    def _throttled(self, response: requests.Response) -> bool:
        return self.limits.throttled is not None and self.limits.throttled(response)

    def _retry_wait(self, response: requests.Response, attempt: int,
                    throttled: bool) -> float | None:
        """Seconds to wait before retrying `response`, or None when retrying cannot help."""
        if response.status_code not in RETRY_STATUSES and not throttled:
            return None
        wait = retry_after(response)
        if wait is None:
            reset = self._reset_in(response)
            if reset is not None and (response.status_code == 429 or throttled
                                      or self._exhausted(response)):
                wait = reset
        if wait is None:
            wait = self._backoff(attempt)
            if throttled or response.status_code == 429:
                wait = max(wait, self.limits.min_wait)
        return wait

    def _reset_in(self, response: requests.Response) -> float | None:
        if not self.limits.reset or not response.headers.get(self.limits.reset):
            return None
        seconds = _seconds(response.headers[self.limits.reset], self.limits.reset_format,
                           time.time())
        return None if seconds is None else max(seconds, 0.0)

    def _exhausted(self, response: requests.Response, reserve: int = 0) -> bool:
        value = response.headers.get(self.limits.remaining) if self.limits.remaining else None
        try:
            return value is not None and float(value) <= reserve
        except ValueError:
            return False

    def _note_window(self, response: requests.Response) -> None:
        """The last call of a rate-limit window (but its reserve): wait for its reset before
        the next one."""
        if not self._exhausted(response, self.limits.reserve):
            return
        reset = self._reset_in(response)
        if reset is not None:
            with self._lock:
                until = time.monotonic() + min(reset, self.settings.max_retry_wait)
                self._pause_until = max(self._pause_until, until)

    def _wait_for_window(self) -> None:
        with self._lock:
            delay = self._pause_until - time.monotonic()
        if delay > 0:
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so that many workers do not retry in step."""
        ceiling = min(self.settings.backoff * 2 ** (attempt - 1), self.settings.max_retry_wait)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _observe(self, operation: str, status: int, retries: int) -> None:
        if self._observer is not None:
            self._observer(self.service, operation, status, retries)


def _cause(exc: BaseException) -> str:
    """The innermost reason of a requests/urllib3 failure (refused, DNS, certificate...)."""
    seen: BaseException | None = exc
    text = str(exc)
    while seen is not None:
        if seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        elif getattr(seen, "reason", None) is not None and isinstance(seen.reason, BaseException):
            seen = seen.reason
        else:
            text = str(seen) or type(seen).__name__
            break
    return text


def parse_json(response: requests.Response, operation: str) -> Any:
    """The body as JSON, or MalformedResponse naming what is wrong with it."""
    try:
        return json.loads(response.content)
    except RecursionError:
        raise MalformedResponse(operation, "the JSON answer is nested too deeply",
                                response.status_code) from None
    except ValueError as exc:
        kind = response.headers.get("Content-Type", "no content type")
        raise MalformedResponse(operation, f"the answer is not JSON ({kind}): {exc}",
                                response.status_code) from None
