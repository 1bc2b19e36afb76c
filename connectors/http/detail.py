"""Per-resource detail calls whose failure must not sink the resource: what could not be read
is recorded under the resource's FETCH_ERRORS for the checks that need it to report `error`."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from collector.model import FETCH_ERRORS
from connectors.http.errors import HttpError


def detail(data: dict[str, Any], name: str, call: Callable[[], Any], *,
           absent: Collection[int] = (404,),
           pick: Callable[[Any], Any] = lambda answer: answer) -> None:
    """Set data[name] from call(); None when the API answers a status in `absent` (the thing
    does not exist); any other failure goes to data["_errors"][name]."""
    try:
        data[name] = pick(call())
    except HttpError as exc:
        if exc.status in absent:
            data[name] = None
        else:
            data.setdefault(FETCH_ERRORS, {})[name] = str(exc)
    except (KeyError, TypeError, ValueError, RecursionError) as exc:  # the wrong shape
        data.setdefault(FETCH_ERRORS, {})[name] = (
            f"{name}: unexpected answer: {type(exc).__name__}: {exc}")
