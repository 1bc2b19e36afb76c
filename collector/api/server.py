"""Uvicorn in a background thread, so that `annexa run` serves the API beside /metrics."""

from __future__ import annotations

import logging
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("annexa.api")


class ApiServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False,
            lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, name="annexa-api", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Returns once the socket listens; raises if the server could not start."""
        self.thread.start()
        for _ in range(int(timeout / 0.05)):
            if self.server.started or not self.thread.is_alive():
                break
            self.thread.join(0.05)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"the auditor API could not listen on "
                               f"{self.server.config.host}:{self.server.config.port}")

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.server.config.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=30)
