"""The whole AWS pipeline through the CLI, on SQLite and PostgreSQL: every planted gap in the
sample organisation is found, on exactly the planted resources, and nothing else fails."""

from __future__ import annotations

import sqlalchemy as sa

from collector.demo.seed import seed_all
from tests.helpers import (
    REGIONS,
    annexa,
    controls_json,
    emulator_client,
    failing_by_check,
    write_config,
)


def test_each_check_fails_exactly_on_the_planted_resources(tmp_path, database_url, moto_url,
                                                           capsys):
    planted = seed_all(emulator_client(moto_url), REGIONS)
    config = write_config(tmp_path, database_url, moto_url)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, err
    assert ": complete in" in out, out

    controls = controls_json(capsys, config)
    failing = failing_by_check(controls)
    assert len(failing) >= 25
    for check_id, keys in failing.items():
        assert keys == planted.get(check_id, set()), check_id
    assert set(planted) <= set(failing), "a planted gap has no check that ran"
    for control in controls:
        for chk in control["checks"]:
            assert chk["status"] != "error", (chk["id"], chk["errors"])
            for failure in chk["failures"]:
                assert failure["reason"] and failure["evidence"], failure
        has_failure = any(c["status"] == "fail" for c in control["checks"])
        assert (control["status"] == "fail") == has_failure, control["id"]

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        keys = list(conn.scalars(sa.text("SELECT key FROM resource_versions")))
    engine.dispose()
    assert all(k.startswith("arn:aws:") for k in keys), [k for k in keys if
                                                         not k.startswith("arn:aws:")]
    assert annexa(capsys, config, "verify")[0] == 0
