"""Google Workspace sources through the CLI on SQLite and PostgreSQL: two customers as two
independent sources, their planted gaps and nothing else, an unchanged run that adds no blob,
a partial run that keeps earlier evidence and never passes what it could not see, and a ledger
and bundle that verify."""

from __future__ import annotations

import sqlalchemy as sa
from werkzeug.wrappers import Response

from collector.demo.emulators import google_workspace as fake
from tests.google_workspace_support import (
    CHECKS,
    GAPS,
    TWIN,
    source_options,
    workspace,
    workspace_server,
    write_config,
)
from tests.helpers import annexa, assert_ledger_and_bundle_verify, controls_json, failing_by_check

__all__ = ["workspace", "workspace_server"]  # fixtures


def _query(database_url: str, sql: str, **params: object) -> list[tuple]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]
    finally:
        engine.dispose()


def _workspace_checks(controls: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls for c in ctl["checks"] if c["id"] in CHECKS}


def test_two_customers_are_two_sources_with_exactly_their_gaps(workspace, tmp_path,
                                                               database_url, capsys):
    config = write_config(tmp_path, database_url, [
        {"name": "ws-gaps", **source_options(workspace, tmp_path, GAPS)},
        {"name": "ws-twin", **source_options(workspace, tmp_path, TWIN)}])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    assert out.count(": complete in") == 2, out

    controls = controls_json(capsys, config)
    failing = failing_by_check(controls)
    assert {c: failing.get(c, set()) for c in CHECKS} == fake.planted()
    assert {c["status"] for c in _workspace_checks(controls).values()} == {"fail"}
    scopes = _query(database_url, "SELECT DISTINCT source, scope FROM resource_versions")
    assert sorted(scopes) == [("ws-gaps", GAPS.id), ("ws-twin", TWIN.id)]

    # An unchanged customer adds no blob.
    assert annexa(capsys, config, "collect")[0] == 0
    [(runs, new_blobs)] = _query(database_url, "SELECT COUNT(DISTINCT r.id), COUNT(b.digest) "
                                 "FROM runs r LEFT JOIN blobs b ON b.first_run = r.id "
                                 "WHERE r.id > 2")
    assert (runs, new_blobs) == (2, 0)

    assert_ledger_and_bundle_verify(capsys, config, tmp_path)


def test_a_partial_run_keeps_earlier_evidence_and_never_passes_what_it_missed(
        workspace, tmp_path, database_url, capsys):
    config = write_config(tmp_path, database_url,
                          [{"name": "ws", **source_options(workspace, tmp_path, GAPS)}])
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    first = failing_by_check(controls_json(capsys, config))

    workspace.api.fail(r"/v1/policies", fake.permission_denied_403)
    workspace.api.fail(r"/users\?.*pageToken=", Response(b"<html>busy</html>", 200,
                                                         content_type="text/html"), times=1)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "partial" in out, out
    assert "cloudidentity.policies in *: policies.list: HTTP 403 PERMISSION_DENIED" in out, out
    checks = _workspace_checks(controls_json(capsys, config))
    for check_id, chk in checks.items():
        assert chk["status"] != "pass", (check_id, chk)
    for check_id in ("google_workspace.password_policy_strong",
                     "google_workspace.less_secure_apps_disabled",
                     "google_workspace.two_step_verification_enforced"):
        # What failed before still fails, on its earlier evidence; the rest could not judge.
        assert checks[check_id]["status"] == ("fail" if first.get(check_id) else "error")
        assert set(checks[check_id]["failing_resources"]) == first.get(check_id, set())
        why = checks[check_id]["errors"] + [f["reason"] for f in checks[check_id]["failures"]]
        assert any("HTTP 403" in e for e in why), checks[check_id]
    assert any("MalformedResponse" in e
               for e in checks["google_workspace.user_2sv_enrolled"]["errors"])
    # The users after the broken page were not seen, and are kept, not deleted.
    [(open_users,)] = _query(database_url, "SELECT COUNT(*) FROM resource_versions WHERE "
                             "kind = 'google_workspace.user' AND valid_to_run IS NULL")
    assert open_users == len(GAPS.people)
    assert annexa(capsys, config, "verify")[0] == 0

    workspace.api.heal()
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out
    assert failing_by_check(controls_json(capsys, config)) == first
    assert annexa(capsys, config, "verify")[0] == 0
