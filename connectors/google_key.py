"""Service-account key files named in a Google source's options, checked when the
configuration is read, so that a wrong file is named at once rather than at the first run."""

from __future__ import annotations

import json
from pathlib import Path


def service_account_key(path: Path | None, why: str) -> Path | None:
    """`path` if it holds a service-account key; ValueError naming the problem and `why` a
    key is needed otherwise."""
    if path is None:
        return None
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise ValueError(f"{path} is not a JSON key file") from None
    kind = key.get("type") if isinstance(key, dict) else None
    if kind != "service_account":
        raise ValueError(f"{path} holds {kind or 'no'} credentials, not a service-account "
                         f"key: {why}")
    return path
