"""What `annexa doctor` asks of a connector: its permissions as data, each with the one call
that exercises it, and one way of telling what came of that call. A connector's `probes.py`
declares a Plan; the engine (collector/doctor.py) runs it and reports.

A call that fails is classified here, once for every connector: no answer (the cause named by
connectors/http/reach.py), a denial (HTTP 403, AWS AccessDenied and the like), credentials the
API refused (HTTP 401, an unknown AWS key), or an answer that only comes after authorisation
(a placeholder that does not exist), which means the permission is granted."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from connectors.http.auth import CredentialError
from connectors.http.errors import HttpError
from connectors.http.reach import unreachable

Status = Literal["granted", "denied", "unreachable", "untested", "error"]
GRANTED, DENIED, UNREACHABLE, UNTESTED, ERROR = (
    "granted", "denied", "unreachable", "untested", "error")

# AWS error codes of a request that was understood and refused for want of a permission.
AWS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                        "AuthorizationError", "UnauthorizedAccess", "Forbidden"})
# AWS error codes of credentials that were refused whatever the permission.
AWS_REJECTED = frozenset({"InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
                          "InvalidAccessKeyId", "UnrecognizedClientException",
                          "InvalidToken", "AuthFailure"})
_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    # The credentials themselves were refused (HTTP 401, an unknown key): no permission can be
    # judged with them, so the source reports this once.
    rejected: bool = False


class Untested(Exception):
    """A probe that could not be made: there is nothing to make it on (no bucket, no
    repository), or the call it depends on failed."""


@dataclass(frozen=True)
class Probe:
    """One permission and the one call that exercises it. `grant` is the text of the line of
    the shipped `policy` file that grants it (the permission itself unless given); `authorised`
    lists the error codes or HTTP statuses that the API answers only once it has authorised
    the call (a placeholder resource that does not exist)."""

    permission: str
    call: str
    run: Callable[[], Any]
    policy: str
    grant: str | None = None
    authorised: Collection[str | int] = ()

    @property
    def policy_text(self) -> str:
        return self.grant or self.permission


@dataclass(frozen=True)
class Plan:
    """The probes of one source, and what obtains its credentials (`login`, a token exchange
    or an identity call) when that is a step of its own."""

    probes: Sequence[Probe]
    login: Callable[[], Any] | None = None
    login_call: str = ""


def _line(text: str) -> str:
    """One line, and not the whole of an XML or HTML error page."""
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT - 3] + "..."


def outcome(run: Callable[[], Any], authorised: Collection[str | int] = ()) -> Outcome:
    """Make the call and classify what came of it."""
    try:
        run()
    except Untested as exc:
        return Outcome(UNTESTED, str(exc))
    except Exception as exc:  # classified below; anything unforeseen is an `error`, named
        result = classify(exc, authorised)
        return Outcome(result.status, _line(result.detail), result.rejected)
    return Outcome(GRANTED)


def classify(exc: BaseException, authorised: Collection[str | int] = ()) -> Outcome:
    """What a failed call says about the permission it exercised (see the module's doc)."""
    cause = unreachable(exc)
    if cause is not None:
        return Outcome(UNREACHABLE, cause)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = (f"{exc.operation_name}: {code or f'HTTP {status}'}: "
                   f"{error.get('Message', '')}").rstrip(": ")
        if code in authorised or status in authorised:
            return Outcome(GRANTED, f"authorised ({code})")
        if code in AWS_REJECTED:
            return Outcome(DENIED, message, rejected=True)
        if code in AWS_DENIED or status == 403:
            return Outcome(DENIED, message)
        return Outcome(ERROR, message)
    if isinstance(exc, HttpError):
        if exc.status in authorised or (exc.code and exc.code in authorised):
            return Outcome(GRANTED, f"authorised (HTTP {exc.status})")
        if exc.code == "CredentialUnavailable":
            # No token for this permission's scope alone: the scope is not granted (Google's
            # domain-wide delegation refuses so).
            return Outcome(DENIED, str(exc))
        if exc.status == 401:
            return Outcome(DENIED, str(exc), rejected=True)
        if exc.denied:
            return Outcome(DENIED, str(exc))
        return Outcome(ERROR, str(exc))
    if isinstance(exc, CredentialError):
        return Outcome(DENIED, str(exc))
    return Outcome(ERROR, f"{type(exc).__name__}: {exc}")
