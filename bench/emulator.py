"""A moto server on 127.0.0.1, run inside the benchmark's own process, that counts the HTTP
requests it receives per AWS service. The tools under test run as child processes and reach it
through their endpoint settings, so every request they make is counted here."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

# Set before moto is imported: the default AMIs cost seconds at start and are never used.
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

# SigV4: Credential=AKID/20260101/us-east-1/s3/aws4_request
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
UNSIGNED = "(unsigned)"

# Dummy credentials for every client of the emulator, and no profile or config file of the
# machine's: nothing in a benchmark may reach a real account.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
CHILD_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent",
             "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}

StartResponse = Callable[..., Any]


def service_of(environ: dict[str, Any]) -> str:
    """The service named in the request's SigV4 credential scope."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else UNSIGNED


class _Counting:
    """WSGI middleware: one count per request, by service. moto's own control API
    (/moto-api/...) is not AWS traffic and is not counted."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.latency = 0.0  # seconds added before each AWS answer, as a distant endpoint's

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            service = service_of(environ)
            with self._lock:
                self._counts[service] += 1
            if self.latency:
                time.sleep(self.latency)
        return self._app(environ, start_response)

    def take(self) -> Counter[str]:
        """The counts since the last take, and start again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


class Emulator:
    """`with Emulator() as emu:` serves on emu.url until the block ends."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._counting = _Counting(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, self._counting, threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-emulator")

    def __enter__(self) -> Emulator:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=30)
        self._server.server_close()

    def set_latency(self, seconds: float) -> None:
        self._counting.latency = seconds

    def take_counts(self) -> Counter[str]:
        return self._counting.take()

    def reset(self) -> None:
        """Forget every emulated resource (a fresh, empty account)."""
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=60).raise_for_status()
        self.take_counts()
