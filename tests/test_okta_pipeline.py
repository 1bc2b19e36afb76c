"""The Okta source through the `annexa` CLI on SQLite and PostgreSQL: planted gaps on exactly
their resources beside passing twins, an unchanged second run that adds no blob, a throttled
run that finishes with identical results, a refused listing and a revoked token that keep the
earlier evidence and never pass, a ledger and a bundle that verify."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import yaml

from collector.config import ConfigError, load
from collector.demo.emulators import okta
from collector.schema import now
from tests.helpers import (
    annexa,
    assert_unchanged_sealed_and_exported,
    controls_json,
    failing_by_check,
    open_versions,
)
from tests.okta_support import SINGLE, OktaFake, okta_fake, okta_server, write_config

__all__ = ["okta_fake", "okta_server"]


def _okta_checks(capsys, config) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {c["id"]: c for ctl in controls_json(capsys, config) for c in ctl["checks"]
            if c["id"].startswith("okta.")}


def test_the_org_is_judged_stored_sealed_and_exported(tmp_path, database_url, capsys,
                                                      okta_fake: OktaFake) -> None:
    config = write_config(tmp_path, database_url, okta_fake)
    started = now() - timedelta(seconds=1)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    checks = _okta_checks(capsys, config)
    assert len(checks) >= 10
    for check_id, chk in checks.items():
        assert chk["status"] != "error", (check_id, chk["errors"])
        assert set(chk["failing_resources"]) == okta_fake.planted.get(check_id, set()), check_id
        if check_id not in SINGLE:
            assert chk["resources"].get("pass", 0) >= 1, (check_id, chk["resources"])
    assert set(okta_fake.planted) <= set(checks), "a planted gap has no check that ran"

    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        keys = list(conn.scalars(sa.text("SELECT key FROM resource_versions")))
    engine.dispose()
    assert keys and all(k.startswith("okta:") for k in keys)

    assert_unchanged_sealed_and_exported(capsys, config, tmp_path, started)


def test_a_throttled_run_finishes_with_identical_results(tmp_path, database_url, capsys,
                                                         okta_fake: OktaFake) -> None:
    config = write_config(tmp_path, database_url, okta_fake)
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    calm = failing_by_check(controls_json(capsys, config))

    # Few calls a window (paced before the 429), and a 429 storm beside it (waited out).
    okta_fake.org.rate_limit = 16
    okta_fake.api.throttle_every(6, okta.rate_limited(window=1.0))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    assert "(0 new versions, 0 new blobs)" in out, out
    assert failing_by_check(controls_json(capsys, config)) == calm
    assert okta_fake.api.total_calls > 0 and annexa(capsys, config, "verify")[0] == 0


def test_a_refused_listing_and_a_revoked_token_keep_the_evidence_and_never_pass(
        tmp_path, database_url, capsys, okta_fake: OktaFake) -> None:
    config = write_config(tmp_path, database_url, okta_fake)
    annexa(capsys, config, "db", "upgrade")
    assert annexa(capsys, config, "collect")[0] == 0
    tokens = len(okta_fake.org.api_tokens)
    assert open_versions(database_url, "okta.api_token") == tokens

    okta_fake.api.fail(r"^/api/v1/api-tokens", okta.forbidden)
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "partial" in out, out
    assert "error: api-tokens in *: apiTokens.list: HTTP 403 E0000006" in out, out
    chk = _okta_checks(capsys, config)["okta.api_token.network_restricted"]
    # A failure seen before stays a failure; nothing that could not be read passes.
    assert chk["status"] in ("error", "fail"), chk
    assert any("api-tokens could not be collected" in e for e in chk["errors"]), chk
    assert open_versions(database_url, "okta.api_token") == tokens, (
        "evidence of tokens that could not be read is kept, not deleted")

    okta_fake.api.heal()
    okta_fake.org.secrets.clear()
    code, _, err = annexa(capsys, config, "collect")
    assert code == 1 and "E0000011" in err, err
    statuses = {c["status"] for c in _okta_checks(capsys, config).values()}
    assert "pass" not in statuses and statuses <= {"error", "fail", "stale", "unknown"}, statuses
    assert open_versions(database_url, "okta.user") == len(okta_fake.org.users)
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.mark.parametrize(("option", "value", "problem"), [
    ("org_url", "acme.okta.com", "sources[0].org_url: 'acme.okta.com' is not an "
                                 "Okta org URL"),
    ("private_key_file", "/nonexistent.pem", "sources[0].private_key_file: /nonexistent.pem: "
                                             "cannot read"),
    ("users_page", 10, "sources[0].users_page: Extra inputs are not permitted"),
], ids=["org_url", "key", "unknown"])
def test_a_bad_source_names_the_field(tmp_path, okta_fake: OktaFake, option: str,
                                      value: object, problem: str) -> None:
    config = write_config(tmp_path, "sqlite:///unused.db", okta_fake)
    raw = yaml.safe_load(config.read_text())
    raw["sources"][0][option] = value
    config.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as error:
        load(str(config))
    assert problem in str(error.value)
