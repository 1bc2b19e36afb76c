"""GCP sources through the CLI on SQLite and PostgreSQL: the sample organization's planted
gaps and nothing else, each project its own scope, an unchanged run that adds no blob, a
partial run (IAM policies denied, a page malformed) that keeps earlier evidence and never
passes what it could not see, and a ledger and bundle across a GCP and a Workspace source
that verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from werkzeug.wrappers import Response

from collector.demo.emulators import gcp as fake
from collector.demo.emulators import gcp_sample as sample
from tests import google_workspace_support as workspace_support
from tests.gcp_support import GAPS, LAB, TWIN, cloud, gcp_server, scope_key, source_options
from tests.google_workspace_support import workspace, workspace_server
from tests.helpers import annexa, assert_ledger_and_bundle_verify, controls_json, failing_by_check

__all__ = ["cloud", "gcp_server", "workspace", "workspace_server"]  # fixtures

CHECKS = frozenset(sample.planted())


def _query(database_url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _config(tmp_path: Path, database_url: str, sources: list[dict[str, Any]]) -> Path:
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump({
        "database": database_url, "signing_key": str(tmp_path / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0}, "api": {"host": "127.0.0.1", "port": 0},
        "sources": [{"schedule": "1h", **s} for s in sources]}))
    return path


def _gcp_checks(controls: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls for c in ctl["checks"] if c["id"] in CHECKS}


def test_the_organization_has_exactly_its_gaps_beside_a_workspace_source(
        cloud, workspace, tmp_path, database_url, capsys):
    ws = workspace_support.source_options(workspace, tmp_path, workspace_support.GAPS)
    config = _config(tmp_path, database_url, [
        {"name": "gcp-org", "kind": "gcp", **source_options(cloud, tmp_path)},
        {"name": "workspace", "kind": "google_workspace", **ws}])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    assert out.count(": complete in") == 2, out

    controls = controls_json(capsys, config)
    failing = failing_by_check(controls)
    assert {c: failing.get(c, set()) for c in CHECKS} == sample.planted()
    assert {c["status"] for c in _gcp_checks(controls).values()} == {"fail"}
    scopes = _query(database_url, "SELECT DISTINCT scope FROM resource_versions "
                                  "WHERE source = 'gcp-org'")
    assert sorted(scopes) == sorted((scope_key(n),) for n in (GAPS, LAB, TWIN))

    # An unchanged organization adds no blob.
    assert annexa(capsys, config, "collect")[0] == 0
    [(runs, new_blobs)] = _query(database_url, "SELECT COUNT(DISTINCT r.id), COUNT(b.digest) "
                                 "FROM runs r LEFT JOIN blobs b ON b.first_run = r.id "
                                 "WHERE r.id > 2")
    assert (runs, new_blobs) == (2, 0)

    assert_ledger_and_bundle_verify(capsys, config, tmp_path)


def test_a_partial_run_keeps_earlier_evidence_and_never_passes_what_it_missed(
        cloud, tmp_path, database_url, capsys):
    config = _config(tmp_path, database_url,
                     [{"name": "gcp", "kind": "gcp", **source_options(cloud, tmp_path)}])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    first = failing_by_check(controls_json(capsys, config))

    cloud.api.fail(r"contentType=2", fake.denied_403)
    cloud.api.fail(r"contentType=1.*pageToken=", Response(b"<html>busy</html>", 200,
                                                          content_type="text/html"), times=1)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "partial" in out, out
    checks = _gcp_checks(controls_json(capsys, config))
    for check_id, chk in checks.items():
        assert chk["status"] != "pass", (check_id, chk)
    for check_id in ("gcp.storage_bucket_not_public", "gcp.project_no_user_owner"):
        # What failed before still fails, on its earlier evidence; the rest could not judge.
        assert checks[check_id]["status"] == "fail"
        assert set(checks[check_id]["failing_resources"]) == first[check_id]
        why = checks[check_id]["errors"] + [f["reason"] for f in checks[check_id]["failures"]]
        assert any("HTTP 403" in e for e in why), checks[check_id]
    assert any("MalformedResponse" in e
               for e in checks["gcp.firewall_no_ssh_from_internet"]["errors"])
    # The resources after the broken page were not seen, and are kept, not deleted.
    [(open_rules,)] = _query(database_url, "SELECT COUNT(*) FROM resource_versions WHERE "
                             "kind = 'gcp.compute.firewall' AND valid_to_run IS NULL")
    assert open_rules == 7
    assert annexa(capsys, config, "verify")[0] == 0

    cloud.api.heal()
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out
    assert failing_by_check(controls_json(capsys, config)) == first
    assert annexa(capsys, config, "verify")[0] == 0
