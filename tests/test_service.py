"""`annexa run` as a service: metrics after a scheduled collection, and the demo."""

from __future__ import annotations

import json
import socket
import threading

import requests
from prometheus_client.parser import text_string_to_metric_families

from checks.registry import load_all
from collector import config as configuration
from collector.cli import main
from collector.db import engine_for
from collector.demo.emulators import DEMOS
from collector.ledger import load_or_create_signer
from collector.service import Service
from tests.helpers import annexa, controls_json, emulator_client, write_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_reflect_the_collected_posture(tmp_path, database_url, moto_url, capsys):
    client = emulator_client(moto_url)
    client("kms", "us-east-1").create_key(Description="no rotation")
    client("iam", "us-east-1").create_user(UserName="alice")
    path = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    annexa(capsys, path, "db", "upgrade")
    cfg = configuration.load(str(path))
    port = _free_port()
    cfg = cfg.model_copy(update={"metrics": cfg.metrics.model_copy(update={"port": port})})
    load_all()
    done = threading.Event()
    service = Service(cfg, engine_for(cfg.database), load_or_create_signer(cfg.signing_key),
                      on_run=lambda _: done.set())
    thread = threading.Thread(target=service.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        assert done.wait(120), "the service ran no collection at start"
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        service.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    current = {}
    for sample in families["annexa_control_status"].samples:
        assert set(sample.labels) == {"control", "theme", "title", "status"}
        if sample.value == 1:
            assert sample.labels["control"] not in current, "one status per control"
            current[sample.labels["control"]] = sample.labels["status"]
    expected = {c["id"]: c["status"] for c in controls_json(capsys, path)}
    assert current == expected
    assert len(current) == 93

    counts = {(s.labels["check"], s.labels["status"]): s.value
              for s in families["annexa_check_resources"].samples}
    assert counts[("aws.kms.key_rotation_enabled", "fail")] == 1
    assert counts[("aws.iam.user_console_mfa_enabled", "fail")] == 0

    duration = {s.name: s.value for s in families["annexa_collection_duration_seconds"].samples
                if s.labels.get("source") == "aws-test"}
    assert duration["annexa_collection_duration_seconds_count"] == 1
    last = [s.value for s in
            families["annexa_collection_last_success_timestamp_seconds"].samples]
    assert last and last[0] > 1.7e9
    assert "annexa_collection_errors" in families
    api = sum(s.value for s in families["annexa_api_requests"].samples
              if s.name.endswith("_total"))
    assert api > 0
    for family in families.values():
        for sample in family.samples:
            assert not any(v.startswith("arn:") for v in sample.labels.values()), sample


def test_checks_command_lists_every_check_with_its_mappings(capsys):
    assert main(["checks", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 25
    assert len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert {"id", "title", "resource_kind", "controls", "severity"} <= set(row)
        assert row["controls"] and all(why.strip() for why in row["controls"].values())
        assert row["id"].startswith(row["resource_kind"].split(".")[0] + ".")


def test_demo_once_collects_and_prints_the_control_table(tmp_path, capsys, moto_url):
    # moto keeps one state per process: the demo's emulator sees what the session server holds,
    # so this starts from the state that the moto_url fixture has just reset.
    db = tmp_path / "demo.db"
    assert main(["demo", "--once", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "planted gaps" in out
    assert "A.8.24" in out and "fail" in out
    for name in DEMOS:
        kind = name.rsplit(".", 1)[1]
        assert f"{kind} emulator for" in out, f"the demo started no {kind} emulator"
    assert "people joined across the sources" in out
    assert main(["--config", str(db.with_suffix(".yaml")), "verify"]) == 0
    # AWS, each HTTP demo, and one join of the people across them.
    assert f"ledger intact: {2 + len(DEMOS)} runs" in capsys.readouterr().out
