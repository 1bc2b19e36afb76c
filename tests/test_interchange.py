"""`annexa export --format oscal|ocsf`: OSCAL assessment-results that compliance-trestle's OSCAL
models accept, and OCSF Compliance Findings that match the stored results line for line."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pydantic
import pytest
import requests
import sqlalchemy as sa
from trestle.oscal import OSCAL_VERSION
from trestle.oscal.assessment_results import Model as OscalAssessmentResults

from checks.registry import REGISTRY, load_all
from collector.cli import main
from tests.api_support import TwoRuns, api_server, token, two_runs
from tests.helpers import annexa, controls_json

FRESHNESS = timedelta(hours=48)  # the configuration's default
ROTATION = "aws.kms.key_rotation_enabled"


@pytest.fixture
def history(tmp_path, database_url, moto_url, capsys) -> TwoRuns:
    return two_runs(tmp_path, database_url, moto_url, capsys)


def _export(capsys, history: TwoRuns, fmt: str, start: datetime, end: datetime,
            out: Path, *extra: str) -> str:
    code, stdout, err = annexa(capsys, history.config, "export", "--format", fmt, "--from",
                               start.isoformat(), "--to", end.isoformat(), "--out", str(out),
                               *extra)
    assert code == 0, err
    return stdout


def _held(history: TwoRuns, start: datetime, end: datetime) -> list[tuple[str, str, str]]:
    """(check, subject, status) of every result row that held at an instant of the window,
    computed run by run: the source's last run by `start`, and every run up to `end`."""
    engine = sa.create_engine(history.database_url)
    with engine.connect() as conn:
        runs = [(rid, _aware(fin)) for rid, fin in conn.execute(sa.text(
            "SELECT id, finished_at FROM runs WHERE seq IS NOT NULL ORDER BY id"))]
        relevant = [rid for rid, fin in runs if start < fin <= end]
        before = [rid for rid, fin in runs if fin <= start]
        relevant += before[-1:]
        rows: dict[int, tuple[str, str, str]] = {}
        for run_id in relevant:
            for row in conn.execute(sa.text(
                    "SELECT id, check_id, subject, status FROM check_results WHERE "
                    "valid_from_run <= :r AND (valid_to_run IS NULL OR valid_to_run > :r)"),
                    {"r": run_id}):
                rows[row.id] = (row.check_id, row.subject, row.status)
    engine.dispose()
    return sorted(rows.values())


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def _prop(item: dict, name: str) -> str:
    (value,) = [p["value"] for p in item["props"] if p["name"] == name]
    return value


def test_oscal_assessment_results_validate_and_tell_the_window(history, capsys, tmp_path):
    start = history.first_finished - timedelta(minutes=1)
    end = history.second_finished + timedelta(seconds=1)
    out = tmp_path / "ar.json"
    summary = _export(capsys, history, "oscal", start, end, out)
    assert f"{out}: oscal for" in summary
    doc = json.loads(out.read_text())
    OscalAssessmentResults.model_validate(doc)  # compliance-trestle's OSCAL models
    assert doc["assessment-results"]["metadata"]["oscal-version"] == OSCAL_VERSION
    broken = copy.deepcopy(doc)
    broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "ok"
    with pytest.raises(pydantic.ValidationError):
        OscalAssessmentResults.model_validate(broken)  # the validator does reject bad output

    (result,) = doc["assessment-results"]["results"]
    assert datetime.fromisoformat(result["start"]) == start
    assert datetime.fromisoformat(result["end"]) == end
    observations = result["observations"]
    held = _held(history, start, end)
    assert sorted((_prop(o, "check-id"), _prop(o, "resource"), _prop(o, "result"))
                  for o in observations) == held
    rotation = sorted(_prop(o, "result") for o in observations
                      if _prop(o, "check-id") == ROTATION)
    assert rotation == ["fail", "pass"], "the key failed in run 1 and passed in run 2"
    for obs in observations:
        collected = datetime.fromisoformat(obs["collected"])
        assert history.first_finished <= collected <= history.second_finished
        assert datetime.fromisoformat(obs["expires"]) - collected == FRESHNESS
        assert obs["methods"] == ["TEST"]
        for evidence in obs.get("relevant-evidence", []):
            assert evidence["href"] == f"/evidence/{_prop(evidence, 'sha256')}"

    findings = {f["target"]["target-id"]: f for f in result["findings"]}
    assert len(findings) == 93
    assert {f["target"]["type"] for f in findings.values()} == {"objective-id"}
    a824 = findings["A.8.24"]["target"]["status"]
    assert a824 == {"state": "not-satisfied", "reason": "fail"}, "rotation failed in the window"
    assert findings["A.5.1"]["target"]["status"]["state"] == "not-satisfied"  # manual
    by_uuid = {o["uuid"]: o for o in observations}
    related = {_prop(by_uuid[r["observation-uuid"]], "check-id")
               for r in findings["A.8.24"]["related-observations"]}
    assert ROTATION in related
    assert all("A.8.24" in REGISTRY[c].controls for c in related)


def test_oscal_findings_follow_the_control_status(history, capsys, tmp_path):
    # A window that is a single instant after run 2: a finding is satisfied exactly when
    # `annexa controls` says pass (or not applicable) then.
    at = history.second_finished + timedelta(seconds=1)
    out = tmp_path / "ar.json"
    _export(capsys, history, "oscal", at - timedelta(microseconds=1), at, out,
            "--control", "A.8.24", "--control", "A.8.5", "--control", "A.8.15")
    doc = json.loads(out.read_text())
    OscalAssessmentResults.model_validate(doc)
    (result,) = doc["assessment-results"]["results"]
    expected = {c["id"]: c["status"] for c in controls_json(
        capsys, history.config, "--at", at.isoformat())}
    findings = result["findings"]
    assert [f["target"]["target-id"] for f in findings] == ["A.8.5", "A.8.15", "A.8.24"]
    for finding in findings:
        cid = finding["target"]["target-id"]
        satisfied = expected[cid] in ("pass", "not_applicable")
        assert finding["target"]["status"]["state"] == (
            "satisfied" if satisfied else "not-satisfied"), cid
        assert _prop(finding, "annexa-status") == expected[cid]
    load_all()
    checks = {_prop(o, "check-id") for o in result["observations"]}
    assert checks and all(set(REGISTRY[c].controls) & {"A.8.24", "A.8.5", "A.8.15"}
                          for c in checks), "--control limits the observations too"


def test_ocsf_lines_match_the_results_of_the_window(history, capsys, tmp_path):
    start, end = history.second_started, history.second_finished
    out = tmp_path / "findings.jsonl"
    summary = _export(capsys, history, "ocsf", start, end, out)
    lines = out.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    held = _held(history, start, end)
    assert f"{len(held)} compliance findings" in summary
    assert len(records) == len(held)
    assert sorted((r["finding_info"]["types"][0], r["resources"][0]["uid"],
                   r["unmapped"]["annexa"]["result"]) for r in records) == held
    load_all()
    for rec in records:
        assert rec["class_uid"] == 2003 and rec["category_uid"] == 2
        assert rec["activity_id"] in (1, 2)
        assert rec["type_uid"] == 200300 + rec["activity_id"]
        assert rec["metadata"]["version"] == "1.1.0"
        assert rec["metadata"]["product"]["name"] == "Annexa"
        assert isinstance(rec["time"], int) and rec["time"] > 1.7e12
        assert rec["finding_info"]["uid"] and rec["finding_info"]["title"]
        check = REGISTRY[rec["finding_info"]["types"][0]]
        assert rec["compliance"]["standards"] == ["ISO/IEC 27001:2022"]
        assert rec["compliance"]["requirements"] == sorted(check.controls)
        assert rec["compliance"]["control"] in check.controls
        status = rec["unmapped"]["annexa"]["result"]
        assert rec["compliance"]["status_id"] == {"pass": 1, "fail": 3}.get(status, 99)
        assert rec["severity_id"] == {"low": 2, "medium": 3, "high": 4, "critical": 5}[
            check.severity]
        assert rec["resources"][0]["type"].startswith("aws.")
    rotation = {r["unmapped"]["annexa"]["result"]: r for r in records
                if r["finding_info"]["types"][0] == ROTATION}
    # The failing result held at the window's start (run 1) and was carried in: an update.
    # The passing one was first recorded by run 2, inside the window: a creation.
    assert rotation["fail"]["activity_id"] == 2 and rotation["fail"]["compliance"]["status"] \
        == "Fail"
    assert rotation["pass"]["activity_id"] == 1 and rotation["pass"]["status"] == "Resolved"
    assert len({r["finding_info"]["uid"] for r in records}) == len(records)


def test_exports_through_the_api_match_the_cli(history, capsys, tmp_path):
    start = history.first_finished - timedelta(minutes=1)
    end = history.second_finished + timedelta(seconds=1)
    cli = tmp_path / "cli.jsonl"
    _export(capsys, history, "ocsf", start, end, cli)
    tok = token(capsys, history.config)
    with api_server(history.config) as url:
        params = {"from": start.isoformat(), "to": end.isoformat()}
        headers = {"Authorization": f"Bearer {tok}"}
        ocsf = requests.get(url + "/exports/ocsf", params=params, headers=headers, timeout=60)
        oscal = requests.get(url + "/exports/oscal", params=params, headers=headers, timeout=60)
        reversed_ = requests.get(url + "/exports/oscal", headers=headers, timeout=60,
                                 params={"from": end.isoformat(), "to": start.isoformat()})
        bundle = requests.get(url + "/exports/bundle", params=params, headers=headers,
                              timeout=120)
        empty = requests.get(url + "/exports/bundle", headers=headers, timeout=60, params={
            "from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"})
    assert ocsf.status_code == 200
    assert ocsf.headers["content-type"] == "application/x-ndjson"
    assert ocsf.text == cli.read_text()
    assert oscal.status_code == 200
    OscalAssessmentResults.model_validate(oscal.json())
    assert reversed_.status_code == 400 and "is after" in reversed_.json()["detail"]
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    zipped = tmp_path / "bundle.zip"
    zipped.write_bytes(bundle.content)
    key = history.config.parent / "signing.key"
    assert main(["verify-bundle", str(zipped), "--public-key", str(key)]) == 0
    assert "bundle intact: runs #1 to #2" in capsys.readouterr().out
    assert empty.status_code == 409 and "nothing to export" in empty.json()["detail"]


def test_export_refuses_bad_input_with_a_clear_message(history, capsys):
    for args, message in (
        (["--format", "oscal", "--from", "2026-01-02", "--to", "2026-01-01"], "is not before"),
        (["--format", "ocsf", "--from", "2026-01-01", "--to", "soon"], "--to 'soon'"),
        (["--format", "oscal", "--from", "2026-01-01", "--to", "2026-01-02", "--control",
          "A.99"], "'A.99' is not an Annex A 2022 control"),
    ):
        code, _, err = annexa(capsys, history.config, "export", *args)
        assert code == 2, err
        assert message in err, err
