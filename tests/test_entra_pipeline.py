"""The Entra ID source through the `annexa` CLI on SQLite and PostgreSQL: planted gaps on
exactly their resources, an unchanged second run that adds no blob, a refused listing and a
rejected secret that keep the earlier evidence and never pass, a ledger that verifies and a
bundle that verifies offline."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import yaml

from collector.config import ConfigError, load
from collector.demo.emulators import entra
from collector.schema import now
from tests.entra_support import EntraFake, entra_fake, entra_server, write_config
from tests.helpers import (
    annexa,
    assert_unchanged_sealed_and_exported,
    controls_json,
    failing_by_check,
    open_versions,
)

__all__ = ["entra_fake", "entra_server"]


def _entra_failures(capsys, config) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    controls = controls_json(capsys, config)
    for control in controls:
        for chk in control["checks"]:
            if chk["id"].startswith("entra."):
                assert chk["status"] != "error", (chk["id"], chk["errors"])
    return {k: v for k, v in failing_by_check(controls).items() if k.startswith("entra.")}


def test_the_tenant_is_judged_stored_sealed_and_exported(tmp_path, database_url, capsys,
                                                         entra_fake: EntraFake) -> None:
    config = write_config(tmp_path, database_url, entra_fake)
    started = now() - timedelta(seconds=1)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    failing = _entra_failures(capsys, config)
    assert len(failing) >= 16
    for check, keys in failing.items():
        assert keys == entra_fake.planted.get(check, set()), check
    assert set(entra_fake.planted) <= set(failing), "a planted gap has no check that ran"

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        keys = list(conn.scalars(sa.text("SELECT key FROM resource_versions")))
    engine.dispose()
    assert keys and all(k.startswith("entra:") for k in keys)

    assert_unchanged_sealed_and_exported(capsys, config, tmp_path, started)


def test_a_refused_listing_and_a_rejected_secret_keep_the_evidence_and_never_pass(
        tmp_path, database_url, capsys, entra_fake: EntraFake,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path, database_url, entra_fake)
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    assignments = len(entra_fake.tenant.role_assignments)
    assert open_versions(database_url, "entra.role_assignment") == assignments

    entra_fake.api.fail(r"^/v1\.0/roleManagement/directory/roleAssignments", entra.forbidden)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "partial" in out, out
    assert "error: roleAssignments in *: roleAssignments.list: HTTP 403" in out, out
    role_checks = {"entra.role_assignment.no_guest_in_privileged_role",
                   "entra.tenant.global_admins_between_2_and_4"}
    for control in controls_json(capsys, config):
        for chk in control["checks"]:
            if chk["id"] in role_checks:
                # A failure seen before stays a failure; nothing that could not be read passes.
                assert chk["status"] in ("error", "fail"), chk
                assert any("roleAssignments could not be collected" in e
                           for e in chk["errors"]), chk
    assert open_versions(database_url, "entra.role_assignment") == assignments, (
        "evidence of assignments that could not be read is kept, not deleted")

    entra_fake.api.heal()
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    code, _, err = annexa(capsys, config, "collect")
    assert code == 1 and "Invalid client secret" in err, err
    statuses = {c["status"] for ctl in controls_json(capsys, config) for c in ctl["checks"]
                if c["id"].startswith("entra.")}
    assert "pass" not in statuses and statuses <= {"error", "fail", "stale", "unknown"}, statuses
    assert open_versions(database_url, "entra.user") == len(entra_fake.tenant.users)
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("tenant_id", "contoso.onmicrosoft.com", "sources[0].tenant_id: 'contoso.onmicrosoft.com' "
                                             "is not a tenant id"),
    ("graph", "http://graph.example", "sources[0].graph: 'http://graph.example' is not an "
                                      "https:// URL"),
    ("cloud", "germany", "sources[0].cloud: Input should be 'public', 'usgovernment' or "
                         "'china'"),
    ("users_page", 10, "sources[0].users_page: Extra inputs are not permitted"),
], ids=["tenant", "graph", "cloud", "unknown"])
def test_a_bad_source_names_the_field(tmp_path, entra_fake: EntraFake, option: str,
                                      value: object, problem: str) -> None:
    config = write_config(tmp_path, "sqlite:///unused.db", entra_fake)
    raw = yaml.safe_load(config.read_text())
    raw["sources"][0][option] = value
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as error:
        load(str(config))
    assert problem in str(error.value)
