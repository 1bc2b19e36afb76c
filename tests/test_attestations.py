"""Attestations: stored content-addressed and signed, current until their review date and stale
after it, superseded by newer ones, combined with automated checks; owner tokens attest only
their controls through the API; the review-due metric and its alert rules."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from collector import config as configuration
from collector.db import engine_for
from collector.metrics import Metrics
from collector.store import compress, decompress
from tests.helpers import annexa, controls_json, emulator_client, write_config
from tests.manual_support import (
    EXAMPLE_SOA,
    ROOT,
    by_control,
    counts,
    manual_config,
    rows,
    run_json,
    service_api,
    upgraded,
    verified,
)

PDF = b"%PDF-1.4\n\x00\xff\xfe binary policy \x80\x81\n%%EOF\n"
PROMETHEUS_DIR = ROOT / "config" / "prometheus"


def _later(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def _attest(capsys, config: Path, control: str, *extra: str) -> str:
    code, out, err = annexa(capsys, config, "attest", control, "--statement",
                            f"{control} is in place", "--owner", "owner@example.com", *extra)
    assert code == 0, out + err
    return out.split()[1]  # "attestation <id> for ..."


def test_attestations_are_signed_evidence_that_expires_into_stale(tmp_path, database_url,
                                                                   capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    policy = tmp_path / "policy.pdf"
    policy.write_bytes(PDF)
    minutes = tmp_path / "review-minutes.txt"
    minutes.write_text("Board approved the policy set.\n")
    first = _attest(capsys, config, "A.5.1", "--file", str(policy), "--file", str(minutes),
                    "--review-every", "30d")

    now = by_control(controls_json(capsys, config))
    assert now["A.5.2"]["status"] == "manual", "no attestation, no check: it needs one"
    a51 = now["A.5.1"]
    assert a51["status"] == "pass" and a51["attestation"]["id"] == first
    assert a51["attestation"]["current"] is True
    assert a51["evidence_at"] == a51["attestation"]["attested_at"]
    documents = {d["name"]: d for d in a51["attestation"]["documents"]}
    assert documents["policy.pdf"]["digest"] == hashlib.sha256(PDF).hexdigest()
    assert documents["policy.pdf"]["size"] == len(PDF)

    # The document is stored byte for byte, under its SHA-256, as a version of its own.
    (blob,) = rows(database_url, "SELECT body FROM blobs WHERE digest = :d",
                   d=hashlib.sha256(PDF).hexdigest())
    assert decompress(blob.body) == PDF

    assert by_control(controls_json(capsys, config, "--at", _later(29)))["A.5.1"][
        "status"] == "pass"
    overdue = by_control(controls_json(capsys, config, "--at", _later(31)))["A.5.1"]
    assert overdue["status"] == "stale" and overdue["attestation"]["current"] is False

    due = run_json(capsys, config, "attestations", "--due-within", "30d", "--format", "json")
    assert [r["id"] for r in due] == [first]
    assert run_json(capsys, config, "attestations", "--due-within", "7d", "--format",
                    "json") == []
    soon = run_json(capsys, config, "attestations", "--due-within", "7d", "--at", _later(25),
                    "--format", "json")
    assert [(r["control"], r["current"]) for r in soon] == [("A.5.1", True)]
    late = run_json(capsys, config, "attestations", "--due-within", "7d", "--at", _later(40),
                    "--format", "json")
    assert [(r["control"], r["current"]) for r in late] == [("A.5.1", False)]
    code, out, _ = annexa(capsys, config, "attestations", "--at", _later(40))
    assert code == 0 and "A.5.1    OVERDUE" in out and "1 overdue" in out

    # A review supersedes the first attestation; the first stays in the ledger and in history.
    between = datetime.now(UTC).isoformat()
    second = _attest(capsys, config, "A.5.1", "--file", str(policy))
    assert by_control(controls_json(capsys, config, "--at", _later(31)))["A.5.1"][
        "status"] == "pass", "reviewed for another 365 days"
    assert by_control(controls_json(capsys, config, "--at", between))["A.5.1"]["attestation"][
        "id"] == first
    assert run_json(capsys, config, "attestations", "--format", "json")[0]["id"] == second
    stored = rows(database_url, "SELECT kind, key, valid_to_run FROM resource_versions WHERE "
                                "source = 'annexa-attestations' ORDER BY id")
    assert sorted(r.key for r in stored if r.kind == "annexa.attestation") == sorted(
        [f"annexa:attestation:{first}", f"annexa:attestation:{second}"])
    assert len([r for r in stored if r.kind == "annexa.document"]) == 2, \
        "the policy attached twice is stored once"
    assert all(r.valid_to_run is None for r in stored), "attestation runs only add"
    verified(capsys, config)

    # Tampering with a document is caught by verify.
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                     {"b": compress(PDF.replace(b"policy", b"POLICY")),
                      "d": hashlib.sha256(PDF).hexdigest()})
    engine.dispose()
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 1 and hashlib.sha256(PDF).hexdigest() in out


def test_a_control_with_checks_and_an_attestation_needs_both(tmp_path, database_url, moto_url,
                                                             capsys):
    # A.5.7 (threat intelligence) rests on aws.guardduty.enabled_in_region alone.
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "freshness": "1000d"}))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    _attest(capsys, config, "A.5.7", "--review-every", "30d")
    states = by_control(controls_json(capsys, config))
    assert states["A.5.7"]["checks"][0]["status"] == "fail"
    assert states["A.5.7"]["status"] == "fail", "a current attestation does not hide a failure"

    emulator_client(moto_url)("guardduty", "us-east-1").create_detector(Enable=True)
    assert annexa(capsys, config, "collect")[0] == 0
    assert by_control(controls_json(capsys, config))["A.5.7"]["status"] == "pass"
    later = by_control(controls_json(capsys, config, "--at", _later(31)))["A.5.7"]
    assert later["checks"][0]["status"] == "pass"
    assert later["status"] == "stale", "the checks pass but the attestation is overdue"
    verified(capsys, config)


def test_bad_attestations_are_refused_and_store_nothing(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    assert annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))[0] == 0
    good = counts(database_url)
    policy = tmp_path / "policy.pdf"
    policy.write_bytes(PDF)
    base = ["--statement", "in place", "--owner", "owner@example.com"]
    for args, message in [
        (["A.9.9", *base], "attest A.9.9: 'A.9.9' is not an Annex A 2022 control id"),
        (["A.5.1", *base, "--file", str(policy), "--file", str(tmp_path / "gone.pdf")],
         f"--file {tmp_path / 'gone.pdf'}: no such file; nothing was stored"),
        (["A.5.1", *base, "--file", str(tmp_path)], "is a directory, not a file"),
        (["A.5.1", "--statement", "in place", "--owner", "the ciso"],
         "--owner 'the ciso' is not an email address"),
        (["A.5.1", "--statement", "  ", "--owner", "owner@example.com"], "--statement is empty"),
        (["A.5.1", *base, "--review-every", "1x"], "--review-every: '1x' is not a duration"),
        (["A.5.1", *base, "--review-every", "0d"], "the review period must be positive"),
        (["A.7.6", *base], "A.7.6 is excluded by the Statement of Applicability in force"),
    ]:
        code, out, err = annexa(capsys, config, "attest", *args)
        assert code == 2, (args, out, err)
        assert message in err, (message, err)
        assert counts(database_url) == good, f"nothing is stored for {message!r}"
    code, _, err = annexa(capsys, config, "attestations", "--due-within", "a month")
    assert code == 2 and "--due-within: 'a month' is not a duration" in err
    verified(capsys, config)


def _post(url: str, token: str | None, **body: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(url + "/attestations", json=body, headers=headers, timeout=60)


def _token(capsys, config: Path, *args: str) -> str:
    code, out, err = annexa(capsys, config, "token", "create", *args)
    assert code == 0, err
    return out.strip()


def test_owner_tokens_attest_only_their_controls(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    assert annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))[0] == 0
    owner = _token(capsys, config, "--role", "owner", "--controls", "A.6.3,A.7.6",
                   "--name", "people-team")
    auditor = _token(capsys, config, "--role", "auditor", "--name", "kim")
    for args, message in [
        (["--role", "owner"], "an owner token needs the controls it may attest"),
        (["--role", "owner", "--controls", "A.6.3,A.6.99"], "'A.6.99' is not an Annex A"),
        (["--role", "auditor", "--controls", "A.6.3"], "--controls is for owner tokens"),
        (["--role", "owner", "--controls", "A.6.3", "--window", "2026-01-01.."],
         "a --window is for auditor tokens"),
    ]:
        code, _, err = annexa(capsys, config, "token", "create", *args)
        assert code == 2 and message in err, err
    listed = run_json(capsys, config, "token", "list", "--format", "json")
    assert {r["name"]: r["controls"] for r in listed} == {"people-team": ["A.6.3", "A.7.6"],
                                                          "kim": None}
    before = counts(database_url)
    training = b"completion records, 2026\n"
    body = {"statement": "Everyone completed the awareness training", "review_every": "365d",
            "owner": "people@example.com",
            "documents": [{"name": "training.csv",
                           "content_base64": base64.b64encode(training).decode()}]}
    with service_api(config) as url:
        outside = _post(url, owner, control="A.8.24", **body)
        as_auditor = _post(url, auditor, control="A.6.3", **body)
        anonymous = _post(url, None, control="A.6.3", **body)
        excluded = _post(url, owner, control="A.7.6", **body)
        garbled = _post(url, owner, control="A.6.3", **{
            **body, "documents": [{"name": "x.pdf", "content_base64": "not base64!"}]})
        unknown = _post(url, owner, control="A.6.99", **body)
        assert counts(database_url) == before, "nothing is stored for a refused request"
        made = _post(url, owner, control="A.6.3", **body)
        reading = requests.get(url + "/controls", headers={"Authorization": f"Bearer {owner}"},
                               timeout=60)
    assert outside.status_code == 403, outside.text
    assert outside.json()["detail"] == ("token 'people-team' may attest only A.6.3, A.7.6, "
                                        "not A.8.24")
    assert as_auditor.status_code == 403
    assert "role 'auditor' may not attest" in as_auditor.json()["detail"]
    assert anonymous.status_code == 401
    assert excluded.status_code == 409 and "excluded" in excluded.json()["detail"]
    assert garbled.status_code == 422 and "not valid base64" in garbled.json()["detail"]
    assert unknown.status_code == 422
    assert reading.status_code == 403, "an owner token attests; it does not read"
    assert made.status_code == 201, made.text
    record = made.json()
    assert record["control"] == "A.6.3" and record["owner"] == "people@example.com"
    assert record["submitted_by"].startswith("api token 'people-team'")
    assert record["documents"] == [{"name": "training.csv",
                                    "digest": hashlib.sha256(training).hexdigest(),
                                    "size": len(training)}]

    state = by_control(controls_json(capsys, config, "--control", "A.6.3"))["A.6.3"]
    assert state["status"] == "pass" and state["attestation"]["id"] == record["id"]
    logged = rows(database_url, "SELECT method, target, status, token_name FROM api_access_log "
                                "WHERE method = 'POST' ORDER BY id")
    assert [(r.status, r.token_name) for r in logged] == [
        (403, "people-team"), (403, "kim"), (401, None), (409, "people-team"),
        (422, "people-team"), (422, "people-team"), (201, "people-team")]
    verified(capsys, config)


def test_a_document_named_to_climb_out_is_kept_by_its_base_name_or_refused(
        tmp_path, database_url, capsys, monkeypatch):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    # The CLI reads the file its operator names, wherever it is, and keeps only its base name.
    planted = tmp_path / "etc" / "passwd"
    planted.parent.mkdir()
    planted.write_bytes(b"root:x:0:0::/root:/bin/sh\n")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, out, err = annexa(capsys, config, "attest", "A.5.1", "--statement", "in place",
                            "--owner", "owner@example.com", "--file", "../../etc/passwd")
    assert code == 0, out + err
    digest = hashlib.sha256(planted.read_bytes()).hexdigest()
    assert f"  document passwd: sha256 {digest}" in out
    (held,) = run_json(capsys, config, "attestations", "--format", "json")
    assert held["documents"] == [{"name": "passwd", "digest": digest, "size": 26}]

    # The API takes names only, and refuses any that is more than a file's name.
    owner = _token(capsys, config, "--role", "owner", "--controls", "A.5.1", "--name", "o")
    before = counts(database_url)
    content = base64.b64encode(b"policy").decode()
    hostile = ["../../etc/passwd", "/etc/passwd", "..\\..\\boot.ini", "..", ".",
               "policy\x1b[2J.pdf", "gnp.\u202eexe", "x" * 256, ""]
    with service_api(config) as url:
        answers = [_post(url, owner, control="A.5.1", statement="in place",
                         owner="owner@example.com",
                         documents=[{"name": name, "content_base64": content}])
                   for name in hostile]
    assert [a.status_code for a in answers] == [422] * len(hostile)
    for name, answer in zip(hostile, answers, strict=True):
        (problem,) = answer.json()["detail"]
        assert problem["loc"] == ["body", "documents", 0, "name"], (name, problem)
        assert "document name" in problem["msg"] or "names a directory" in problem["msg"] \
            or "at most 255" in problem["msg"] or "at least 1" in problem["msg"], problem
    assert "without a directory" in answers[0].json()["detail"][0]["msg"]
    assert "'..' names a directory, not a file" in answers[3].json()["detail"][0]["msg"]
    assert counts(database_url) == before, "nothing is stored for a refused name"
    verified(capsys, config)


def test_review_due_dates_are_metrics(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    _attest(capsys, config, "A.7.6", "--review-every", "10d")
    _attest(capsys, config, "A.5.1", "--review-every", "30d")
    cfg = configuration.load(str(config))
    engine = engine_for(cfg.database)
    metrics = Metrics()
    metrics.refresh_posture(engine, cfg.freshness_window)

    def due(control: str) -> float | None:
        return metrics.registry.get_sample_value(
            "annexa_attestation_review_due_timestamp_seconds", {"control": control})

    expected = {r["control"]: datetime.fromisoformat(r["review_due"]).timestamp()
                for r in run_json(capsys, config, "attestations", "--format", "json")}
    assert due("A.5.1") == expected["A.5.1"] and due("A.7.6") == expected["A.7.6"]
    assert due("A.5.2") is None
    assert annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))[0] == 0  # excludes A.7.6
    metrics.refresh_posture(engine, cfg.freshness_window)
    engine.dispose()
    assert due("A.5.1") == expected["A.5.1"]
    assert due("A.7.6") is None, "an excluded control has no review due"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    return found


def test_promtool_accepts_and_unit_tests_the_attestation_alerts() -> None:
    rules = PROMETHEUS_DIR / "annexa-attestations.yml"
    done = subprocess.run([_promtool(), "check", "rules", str(rules)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(rules.read_text())["groups"]
              for rule in group["rules"]}
    assert alerts == {"AnnexaAttestationReviewDueSoon", "AnnexaAttestationOverdue"}
    tests = yaml.safe_load((PROMETHEUS_DIR / "annexa-attestations.test.yml").read_text())
    cases = [case for test in tests["tests"] for case in test["alert_rule_test"]]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == alerts, "each rule fires"
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == alerts, "each stays quiet"
    done = subprocess.run([_promtool(), "test", "rules", "annexa-attestations.test.yml"],
                          cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "annexa-attestations.yml" in (PROMETHEUS_DIR / "prometheus.yml").read_text(), \
        "the shipped Prometheus configuration loads the rules"
