"""The collection pipeline end to end through the CLI: storage, intervals, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
import sqlalchemy as sa
import yaml

from tests.helpers import annexa, controls_json, emulator_client, socket_closed_port, write_config


def _counts(database_url: str) -> dict[str, int]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        out = {t: conn.scalar(sa.text(f"SELECT COUNT(*) FROM {t}"))
               for t in ("blobs", "resource_versions", "check_results", "runs")}
    engine.dispose()
    return out


def test_unchanged_recollection_adds_no_blob_and_no_version(tmp_path, database_url, moto_url,
                                                            capsys):
    client = emulator_client(moto_url)
    client("iam", "us-east-1").create_user(UserName="alice")
    client("kms", "eu-west-1").create_key(Description="eu")
    config = write_config(tmp_path, database_url, moto_url)
    annexa(capsys, config, "db", "upgrade")
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0, out
    first = _counts(database_url)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0, out
    assert "(0 new versions, 0 new blobs)" in out
    second = _counts(database_url)
    assert second == {**first, "runs": first["runs"] + 1}

    client("iam", "us-east-1").delete_user(UserName="alice")
    annexa(capsys, config, "collect")
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        closed = conn.execute(sa.text(
            "SELECT valid_to_run FROM resource_versions WHERE key LIKE :k"),
            {"k": "%user/alice"}).all()
    engine.dispose()
    assert closed == [(3,)], "a deleted user's version ends at the run that saw it gone"


def test_commands_refuse_an_unmigrated_database(tmp_path, database_url, moto_url, capsys):
    config = write_config(tmp_path, database_url, moto_url)
    for command in (["collect"], ["controls"], ["verify"]):
        code, _, err = annexa(capsys, config, *command)
        assert code == 2
        assert "run `annexa db upgrade` first" in err


def test_a_libpq_too_old_for_the_store_is_named_before_any_work(tmp_path, database_url,
                                                               moto_url, capsys, monkeypatch):
    from psycopg import pq

    config = write_config(tmp_path, database_url, moto_url)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    monkeypatch.setattr(pq, "version", lambda: 150012)  # a psycopg built on Debian 12's libpq
    code, _, err = annexa(capsys, config, "collect")
    if database_url.startswith("sqlite"):
        assert code == 0, err
        return
    assert code == 2
    assert "needs libpq 17 or later, and this psycopg uses libpq 15.12" in err
    assert _counts(database_url)["runs"] == 0


@pytest.mark.parametrize("content, expected", [
    ("sources:\n  - name: a\n    kind: aws\n    regions: [us-east-1]\n"
     "    schedule: '61 * * * *'\n", "sources[0].schedule:"),
    ("sources:\n  - name: a\n    kind: aws\n", "sources[0].regions: Field required"),
    ("sources:\n  - name: a\n    kind: gcp-nope\n    regions: [x]\n",
     "sources[0].kind: unknown kind"),
    ("sources:\n  - name: a\n    kind: aws\n    regions: [us-east-1]\n    secret_key: x\n",
     "sources[0].secret_key: Extra inputs are not permitted"),
    ("metrics: {port: 99999}\n", "metrics.port:"),
    ("database: [\n", "invalid YAML"),
    ("- just\n- a list\n", "(top level): expected a mapping"),
])
def test_invalid_configuration_exits_2_naming_file_and_field(tmp_path, capsys, content, expected):
    path = tmp_path / "broken.yaml"
    path.write_text(content)
    code, _, err = annexa(capsys, path, "collect")
    assert code == 2
    assert str(path) in err
    assert expected in err
    assert err.count("\n") == 1, "one message, one line"


def test_config_found_through_environment(tmp_path, capsys, monkeypatch):
    path = tmp_path / "env.yaml"
    path.write_text("sources: []\nfreshness: 3x\n")
    monkeypatch.setenv("ANNEXA_CONFIG", str(path))
    from collector.cli import main

    assert main(["controls"]) == 2
    assert f"{path}: freshness:" in capsys.readouterr().err


def test_unreachable_source_fails_without_turning_failures_into_passes(
        tmp_path, database_url, moto_url, capsys):
    client = emulator_client(moto_url)
    client("kms", "us-east-1").create_key(Description="no rotation")
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    before = controls_json(capsys, config)
    checks_before = {c["id"]: c["status"] for ctl in before for c in ctl["checks"]}
    assert {"fail", "pass"} <= set(checks_before.values())

    with socket_closed_port() as port:
        dead = write_config(tmp_path, database_url, f"http://127.0.0.1:{port}",
                            regions=["us-east-1"], max_attempts=1)
        code, _, err = annexa(capsys, dead, "collect")
    assert code == 1
    assert "source failed: SourceUnreachable: sts:GetCallerIdentity failed" in err
    after = controls_json(capsys, config)
    checks_after = {c["id"]: c["status"] for ctl in after for c in ctl["checks"]}
    for check_id, status in checks_before.items():
        expected = {"fail": "fail", "pass": "error"}.get(status)
        if expected:
            assert checks_after[check_id] == expected, check_id
    for old, new in zip(before, after, strict=True):
        if old["status"] == "fail":
            assert new["status"] == "fail", old["id"]
        assert new["status"] != "pass", old["id"]
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.fixture
def iam_enforced(moto_url):
    """Turn on moto's IAM enforcement; switch it off again afterwards."""
    yield lambda: requests.post(f"{moto_url}/moto-api/reset-auth", data=b"0", timeout=10)
    requests.post(f"{moto_url}/moto-api/reset-auth", data=b"inf", timeout=10)


def test_denied_service_is_an_error_never_a_pass(tmp_path, database_url, moto_url, capsys,
                                                 iam_enforced, monkeypatch):
    client = emulator_client(moto_url)
    s3 = client("s3", "us-east-1")
    s3.create_bucket(Bucket="acme-records")
    iam = client("iam", "us-east-1")
    iam.create_user(UserName="annexa-reader")
    iam.put_user_policy(UserName="annexa-reader", PolicyName="no-s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"},
                      {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="annexa-reader")["AccessKey"]
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    bucket_checks = {c["id"]: c["status"] for ctl in controls_json(capsys, config)
                     for c in ctl["checks"] if c["id"].startswith("aws.s3.bucket")}
    assert bucket_checks, "the S3 bucket checks ran on the first collection"

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    iam_enforced()
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0, "a denied service is a partial run, not a failed source"
    assert "partial" in out
    assert "error: s3 in *: AccessDenied" in out
    controls = controls_json(capsys, config)
    for ctl in controls:
        for chk in ctl["checks"]:
            if chk["id"].startswith("aws.s3.bucket"):
                assert chk["status"] in ("error", "fail"), chk
                assert any("s3 could not be collected" in e for e in chk["errors"]), chk
                if any(c["id"] == chk["id"] for c in ctl["checks"]):
                    assert ctl["status"] in ("unknown", "fail"), ctl["id"]
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        open_bucket = conn.scalar(sa.text(
            "SELECT COUNT(*) FROM resource_versions WHERE kind = 'aws.s3.bucket' "
            "AND valid_to_run IS NULL"))
    engine.dispose()
    assert open_bucket == 1, "evidence of a bucket we could not read is kept, not deleted"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    assert annexa(capsys, config, "verify")[0] == 0


def test_sigterm_during_run_leaves_a_verifiable_ledger(tmp_path, database_url, moto_url, capsys):
    client = emulator_client(moto_url)
    iam = client("iam", "us-east-1")
    for i in range(30):
        iam.create_user(UserName=f"user{i}")
    config = write_config(tmp_path, database_url, moto_url)
    cfg = yaml.safe_load(config.read_text())
    cfg["sources"][0]["schedule"] = "1m"
    config.write_text(yaml.safe_dump(cfg))
    annexa(capsys, config, "db", "upgrade")
    proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "--config", str(config),
                             "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ}, text=True)
    engine = sa.create_engine(database_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.scalar(sa.text("SELECT COUNT(*) FROM runs")):
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the service started no run within 60 s")
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "stopped" in output
    with engine.connect() as conn:
        unsealed = conn.scalar(sa.text("SELECT COUNT(*) FROM runs WHERE seq IS NULL"))
        runs = conn.execute(sa.text("SELECT status, message FROM runs")).all()
    engine.dispose()
    assert unsealed == 0, output
    assert runs and {r.status for r in runs} <= {"interrupted", "complete"}, (runs, output)
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0, out
