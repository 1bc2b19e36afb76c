"""Helpers for tests that drive the `annexa` CLI against real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from collector.cli import main

REGIONS = ["us-east-1", "eu-west-1"]


def write_config(tmp_path: Path, database_url: str, moto_url: str, **source: Any) -> Path:
    cfg = {
        "database": database_url,
        "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0},
        "api": {"host": "127.0.0.1", "port": 0},
        "sources": [{"name": "aws-test", "kind": "aws", "schedule": "1h", "regions": REGIONS,
                     "endpoint_url": moto_url, "max_attempts": 2, **source}],
    }
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def controls_json(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> list[dict]:
    code, out, err = annexa(capsys, config, "controls", "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def failing_by_check(controls: list[dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for control in controls:
        for chk in control["checks"]:
            out[chk["id"]] = set(chk["failing_resources"])
    return out


def emulator_client(moto_url: str):  # type: ignore[no-untyped-def]
    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=moto_url)
    return client
