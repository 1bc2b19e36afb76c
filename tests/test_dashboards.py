"""The Grafana dashboards, their provisioning and the compose example: generated JSON is what
config/grafana/generate.py makes, panels are laid out and wired to the Prometheus datasource,
and every path and address that the files name points at something that exists.
(tests/test_prometheus.py evaluates every panel's query against a real Prometheus.)"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from checks.catalogue import controls
from collector import config as configuration

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
GRAFANA = CONFIG / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
COMPOSE = CONFIG / "compose.yaml"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("annexa_dashboards", GRAFANA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(DASHBOARDS.glob("*.json"))}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_committed_dashboards_are_what_the_generator_makes() -> None:
    rendered = _generator().render()
    assert sorted(rendered) == sorted(p.name for p in DASHBOARDS.glob("*.json"))
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run python config/grafana/generate.py")


def test_the_three_dashboards_exist_with_stable_uids() -> None:
    titles = {b["uid"]: b["title"] for b in _boards().values()}
    assert titles == {"annexa-posture": "Annex A posture",
                      "annexa-collector": "Collector health",
                      "annexa-ledger": "Evidence ledger"}


def test_panels_query_the_chosen_prometheus_and_fit_the_grid() -> None:
    for name, board in _boards().items():
        [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
        assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
        titles = Counter(p["title"] for p in board["panels"] if p["type"] != "row")
        assert all(n == 1 for n in titles.values()), f"{name}: repeated titles {titles}"
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, (name, panel["title"], pos)
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                    for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not area & cells, f"{name}: {panel['title']} overlaps another panel"
            cells |= area
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                assert target["expr"].strip()


def test_status_grid_shows_every_control_by_theme() -> None:
    board = _boards()["annexa-posture.json"]
    grid = {p["title"]: p for p in board["panels"]
            if re.fullmatch(r"\w+ controls \(\d+\)", p["title"])}
    per_theme = Counter(c.theme for c in controls().values())
    assert sum(per_theme.values()) == 93
    for theme, count in per_theme.items():
        panel = grid[f"{theme} controls ({count})"]
        [target] = panel["targets"]
        assert f'theme="{theme}"' in target["expr"] and target["legendFormat"] == "{{control}}"
        mapped = {o["text"] for o in panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
                  .values()}
        assert mapped == {"pass", "fail", "stale", "unknown", "manual", "not applicable"}
    assert len(grid) == len(per_theme)


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    [source] = _yaml(GRAFANA / "provisioning" / "datasources" / "annexa.yaml")["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    prometheus = _yaml(COMPOSE)["services"]["prometheus"]
    assert source["url"] == "http://prometheus:9090"
    assert any("9090:9090" in port for port in prometheus["ports"])
    [provider] = _yaml(GRAFANA / "provisioning" / "dashboards" / "annexa.yaml")["providers"]
    mounts = _mounts("grafana")
    assert mounts[provider["options"]["path"]] == DASHBOARDS
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"


def _mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of the service's bind mounts, relative to the compose file."""
    out = {}
    for volume in _yaml(COMPOSE)["services"][service].get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("."):
            out[container] = (COMPOSE.parent / host).resolve()
    return out


def test_compose_example_wires_annexa_prometheus_and_grafana() -> None:
    compose = _yaml(COMPOSE)
    assert set(compose["services"]) == {"postgres", "annexa-migrate", "annexa", "prometheus",
                                        "grafana", "redis", "annexa-worker"}
    assert (COMPOSE.parent / compose["services"]["annexa"]["build"] / "Dockerfile").is_file()
    for service in compose["services"]:
        for container, host in _mounts(service).items():
            assert host.exists(), f"{service}: {host} (mounted at {container}) is missing"
    annexa_cfg = _mounts("annexa")["/etc/annexa/annexa.yaml"]
    cfg = configuration.load(str(annexa_cfg))
    assert cfg.metrics.host == "0.0.0.0"
    assert cfg.database.startswith("postgresql+psycopg://annexa@postgres:5432/")
    assert str(cfg.signing_key).startswith("/var/lib/annexa/")
    assert cfg.queue is not None and cfg.queue.broker == "redis://redis:6379/0"
    assert compose["services"]["annexa-worker"]["command"][0] == "worker"
    assert compose["services"]["annexa-migrate"]["command"] == ["db", "upgrade"]
    scrape = _yaml(_mounts("prometheus")["/etc/prometheus"] / "prometheus.yml")
    [job] = scrape["scrape_configs"]
    assert job["job_name"] == "annexa"
    assert job["static_configs"][0]["targets"] == [f"annexa:{cfg.metrics.port}"]


def test_compose_file_matches_the_compose_specification() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _has_compose_v2(docker: str | None) -> bool:
    return docker is not None and subprocess.run(
        [docker, "compose", "version"], capture_output=True, timeout=30, check=False,
    ).returncode == 0


def test_compose_client_accepts_the_file() -> None:
    # Compose v2 only: the file uses its top-level `name`, which the retired v1 rejects.
    docker = shutil.which("docker")
    if not _has_compose_v2(docker):
        pytest.skip("no `docker compose` client here; the schema test covers the file")
    env = {**os.environ, "ANNEXA_DB_PASSWORD": "x", "GRAFANA_ADMIN_PASSWORD": "x"}
    done = subprocess.run([str(docker), "compose", "-f", str(COMPOSE), "config", "--quiet"],
                          env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
