"""The Azure source through the CLI and the pipeline, on SQLite and PostgreSQL: the planted
gaps are found and nothing else fails; a subscription that answers 403, a page that is not
JSON and a rejected secret leave earlier evidence in place and never pass; the ledger
verifies after all of it, and an exported bundle verifies offline."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from werkzeug.wrappers import Response

from collector.demo.emulators.azure_sample import DEV, PROD
from tests.azure_support import Tenant, azure_server, tenant
from tests.helpers import (
    annexa,
    assert_ledger_and_bundle_verify,
    controls_json,
    failing_by_check,
)

__all__ = ["azure_server", "tenant"]

GRAPH = r"(?i)/providers/Microsoft\.ResourceGraph/resources"


def _azure_checks(controls: list[dict]) -> dict[str, dict]:
    return {c["id"]: c for ctl in controls for c in ctl["checks"] if c["id"].startswith("azure.")}


def _open_versions(database_url: str, where: str = "TRUE") -> dict[str, str]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                f"SELECT key, digest FROM resource_versions WHERE valid_to_run IS NULL "
                f"AND {where}")).all())
    finally:
        engine.dispose()


def _collect(capsys: pytest.CaptureFixture[str], config, expect: str) -> str:
    code, out, err = annexa(capsys, config, "collect")
    assert (code == 0) == (expect != "failed"), (code, out, err)
    assert f"azure-test: {expect} in" in out, out + err
    return out + err


def test_the_cli_finds_the_planted_gaps_and_the_ledger_and_bundle_verify(
        tmp_path, database_url, tenant: Tenant, capsys) -> None:
    config = tenant.write_config(tmp_path, database_url)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    _collect(capsys, config, "complete")
    controls = controls_json(capsys, config)
    failing = {k: v for k, v in failing_by_check(controls).items() if k.startswith("azure.")}
    assert failing == tenant.planted
    for chk in _azure_checks(controls).values():
        assert chk["status"] != "error", (chk["id"], chk["errors"])
        for failure in chk["failures"]:
            assert failure["reason"] and failure["evidence"], failure
    keys = _open_versions(database_url)
    assert keys and all(k.startswith("/subscriptions/") for k in keys)

    second = _collect(capsys, config, "complete")
    assert re.search(r"\(0 new versions, 0 new blobs\)", second), second
    assert_ledger_and_bundle_verify(capsys, config, tmp_path)


def test_what_could_not_be_read_keeps_its_evidence_and_never_passes(
        tmp_path, database_url, tenant: Tenant, capsys, monkeypatch) -> None:
    config = tenant.write_config(tmp_path, database_url, subscriptions=[PROD, DEV])
    annexa(capsys, config, "db", "upgrade")
    _collect(capsys, config, "complete")
    dev = f"scope = '/subscriptions/{DEV}'"
    dev_before = _open_versions(database_url, dev)
    assert dev_before

    # The collector loses its role on dev; meanwhile an app is deleted in prod.
    tenant.state.denied.add(DEV)
    gone = next(r["id"] for r in tenant.state.tables["resources"].values()
                if r["name"] == "acme-prod-web-ftp")
    tenant.state.remove(gone)
    out = _collect(capsys, config, "partial")
    assert "error: subscriptions in *: subscriptions.get: HTTP 403 AuthorizationFailed" in out
    assert _open_versions(database_url, dev) == dev_before, "dev's evidence is kept"
    assert gone not in _open_versions(database_url), "prod's deleted app is closed"
    checks = _azure_checks(controls_json(capsys, config))
    for check_id, keys in tenant.planted.items():
        if keys == {f"/subscriptions/{DEV}"}:
            # The subscription's failure stays on its earlier evidence: a resource check's
            # beside the listing's error, a scope check's saying why it was not judged again.
            assert checks[check_id]["status"] == "fail", checks[check_id]
            why = checks[check_id]["errors"] + [f["reason"] for f in
                                                checks[check_id]["failures"]]
            assert any("subscriptions could not be collected" in e for e in why), why
    # The deleted app no longer fails; whether dev holds such an app is unknown.
    ftp = checks["azure.web.app_plain_ftp_disabled"]
    assert ftp["status"] == "error" and ftp["failing_resources"] == [], ftp

    # A Resource Graph page that is not JSON: the table's kinds are unknown, not passing.
    tenant.state.denied.clear()
    tenant.api.fail(GRAPH, Response(b"<html>gateway timeout</html>", content_type="text/html"))
    before = _open_versions(database_url)
    out = _collect(capsys, config, "partial")
    assert "error: resourcegraph in *: Resources.query: HTTP 200 MalformedResponse" in out
    after = _open_versions(database_url)
    assert set(before) <= set(after), "nothing is closed for want of a readable listing"
    checks = _azure_checks(controls_json(capsys, config))
    assert checks["azure.storage.account_https_only"]["status"] in ("error", "fail")
    assert checks["azure.storage.account_https_only"]["errors"]
    assert checks["azure.monitor.activity_log_exported"]["status"] == "fail"  # judged anew

    # A rejected secret: the source cannot be reached, the run fails, the evidence stays.
    tenant.api.heal()
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "rotated-away")
    err = _collect(capsys, config, "failed")
    assert "Invalid client secret provided" in err
    assert _open_versions(database_url) == after
    assert annexa(capsys, config, "verify")[0] == 0
