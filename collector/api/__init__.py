"""The read-only HTTP API for auditors (FastAPI), served by `annexa run`."""

from collector.api.app import create_app
from collector.api.server import ApiServer

__all__ = ["ApiServer", "create_app"]
