"""Small helpers for per-resource detail calls whose failure must not sink the resource."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from collector.model import FETCH_ERRORS


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


_MESSAGE_LIMIT = 300


def describe(exc: BaseException) -> str:
    """One line naming the cause; an unparsed HTML or XML error page is cut short."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        text = f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".rstrip(": ")
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 3] + "..."


def detail(
    data: dict[str, Any],
    name: str,
    call: Callable[[], Any],
    *,
    absent: tuple[str, ...] = (),
    pick: Callable[[Any], Any] = lambda response: response,
) -> None:
    """Set data[name] from call(); None when the API says the thing is absent (an error code in
    `absent`); any other failure is recorded under data["_errors"][name] for checks to see."""
    try:
        data[name] = pick(call())
    except ClientError as exc:
        if error_code(exc) in absent:
            data[name] = None
        else:
            data.setdefault(FETCH_ERRORS, {})[name] = describe(exc)
    # An unparseable body (an HTML error page from a proxy, or an emulator's unimplemented
    # action) is not a BotoCoreError, but it is still this one detail that failed.
    except (BotoCoreError, ResponseParserError) as exc:
        data.setdefault(FETCH_ERRORS, {})[name] = describe(exc)
    # A document in the answer that is not JSON, or nested too deeply to read (a bucket policy
    # is written by whoever controls the bucket).
    except RecursionError:
        data.setdefault(FETCH_ERRORS, {})[name] = f"{name} is nested too deeply to read"
    except ValueError as exc:
        data.setdefault(FETCH_ERRORS, {})[name] = f"{name} is not valid JSON: {exc}"


def strip_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def jsonable(value: Any) -> Any:
    """A copy of an API response with datetimes as UTC ISO-8601 strings, so data is JSON."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
