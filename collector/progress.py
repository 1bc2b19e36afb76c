"""What long work reports as it goes, for a live display (the CLI's, on a terminal).

The engine calls a Progress only when it is given one; without a terminal there is none, and
the counting costs nothing. A task is what runs (a source, an export, an SoA file); a part is
what of it is counted (an API service, a page's service, evidence files).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

# service, operation, HTTP status, retries: what connectors report of each API call.
ApiObserver = Callable[[str, str, int, int], None]


class Progress(Protocol):
    def count(self, task: str, part: str, *, resources: int = 0, requests: int = 0,
              errors: int = 0) -> None: ...

    def done(self, task: str, status: str) -> None: ...


def service_of(kind: str) -> str:
    """The service a resource kind belongs to, as the API names it: `aws.s3.bucket` -> s3,
    `gcp.compute.instance` -> compute; a two-part kind is its provider's (`okta.user` ->
    okta)."""
    parts = kind.split(".")
    return parts[1] if len(parts) > 2 else parts[0]


def observing(api_observer: ApiObserver | None, progress: Progress | None,
              task: str) -> ApiObserver | None:
    """`api_observer` that also counts each call (a request, or a page) as `task`'s."""
    if progress is None:
        return api_observer

    def observe(service: str, operation: str, status: int, retries: int) -> None:
        if api_observer is not None:
            api_observer(service, operation, status, retries)
        progress.count(task, service, requests=1)
    return observe
