"""Small helpers for per-resource detail calls whose failure must not sink the resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from collector.model import FETCH_ERRORS


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError")
    return type(exc).__name__


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'ClientError')}: {err.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


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
    except BotoCoreError as exc:
        data.setdefault(FETCH_ERRORS, {})[name] = describe(exc)


def strip_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}
