"""The auditor API on a real uvicorn server: tokens, windows, no writes, and the access log as
sealed evidence."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa

from checks.registry import load_all
from collector import access_log
from collector import config as configuration
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.service import Service
from tests.api_support import TwoRuns, api_server, expire, token, two_runs
from tests.helpers import annexa, controls_json

ROTATION = "aws.kms.key_rotation_enabled"


@pytest.fixture
def history(tmp_path, database_url, moto_url, capsys) -> TwoRuns:
    return two_runs(tmp_path, database_url, moto_url, capsys)


def _get(url: str, path: str, tok: str | None = None, **params: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return requests.get(url + path, headers=headers, params=params, timeout=60)


def _access_rows(database_url: str) -> list[sa.Row]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT token_name, role, method, target, status, client, sealed_run "
            "FROM api_access_log ORDER BY id")).all()
    engine.dispose()
    return rows


def test_missing_unknown_expired_and_revoked_tokens_are_refused(history, capsys):
    good = token(capsys, history.config, "--name", "kim")
    expired = token(capsys, history.config, "--name", "old", "--expires", "1d")
    expire(history.database_url, "old", datetime(2020, 1, 1, tzinfo=UTC))
    revoked = token(capsys, history.config, "--name", "gone")
    assert annexa(capsys, history.config, "token", "revoke", "gone")[0] == 0
    with api_server(history.config) as url:
        missing = _get(url, "/controls")
        garbage = _get(url, "/controls", "annexa_not-a-token")
        late = _get(url, "/controls", expired)
        withdrawn = _get(url, "/controls", revoked)
        basic = requests.get(url + "/controls", headers={"Authorization": f"Basic {good}"},
                             timeout=60)
        ok = _get(url, "/controls", good)
        misspelt = _get(url, "/controls", good, contol="A.8.24")
    for response in (missing, garbage, late, withdrawn, basic):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in missing.json()["detail"]
    assert garbage.json()["detail"] == "unknown token"
    assert late.json()["detail"] == "token 'old' expired at 2020-01-01T00:00:00+00:00"
    assert "token 'gone' was revoked" in withdrawn.json()["detail"]
    assert ok.status_code == 200, ok.text
    assert misspelt.status_code == 422, "an unknown filter never widens the answer"
    assert misspelt.json()["detail"][0]["loc"] == ["query", "contol"]
    by_id = {c["id"]: c for c in ok.json()["controls"]}
    expected = {c["id"]: c["status"] for c in controls_json(capsys, history.config)}
    assert {cid: c["status"] for cid, c in by_id.items()} == expected
    assert ROTATION not in by_id["A.8.24"]["failing_checks"]  # after run 2 the key rotates


def test_a_window_scoped_token_sees_nothing_outside_its_window(history, capsys):
    start, end = history.first_finished, history.second_started
    scoped = token(capsys, history.config, "--window", f"{start.isoformat()}..{end.isoformat()}")
    full = token(capsys, history.config)
    after = (history.second_finished + timedelta(seconds=1)).isoformat()
    before = (start - timedelta(days=1)).isoformat()
    with api_server(history.config) as url:
        # Instants outside the window are refused; inside (or by default) they are served.
        for path in ("/controls", "/snapshot", "/results"):
            refused = _get(url, path, scoped, at=after)
            assert refused.status_code == 403, (path, refused.text)
            assert "outside this token's window" in refused.json()["detail"]
            assert _get(url, path, scoped, at=before).status_code == 403
        default = _get(url, "/controls", scoped).json()
        assert default["at"].startswith(end.isoformat()[:19])
        failing = {c["id"]: c["failing_checks"] for c in default["controls"]}
        assert ROTATION in failing["A.8.24"], "the window holds run 1 only: no rotation yet"
        now = {c["id"]: c["failing_checks"] for c in _get(url, "/controls", full).json()[
            "controls"]}
        assert ROTATION not in now["A.8.24"]
        results = _get(url, "/results", scoped, check=ROTATION).json()
        assert [r["status"] for r in results["items"]] == ["fail"]
        assert results["total"] == 1

        # Ranges are clipped to the window, and refused when wholly outside it.
        runs_scoped = _get(url, "/runs", scoped).json()
        runs_full = _get(url, "/runs", full).json()
        assert [r["seq"] for r in runs_full["items"]] == [1, 2]
        assert [r["seq"] for r in runs_scoped["items"]] == [1], "run 2 ended after the window"
        edge = _get(url, "/runs", scoped, **{"from": before, "to": after}).json()
        assert edge["start"].startswith(start.isoformat()[:19])
        assert edge["end"].startswith(end.isoformat()[:19])
        assert _get(url, "/runs", scoped, **{"from": after}).status_code == 403
        oscal = _get(url, "/exports/oscal", scoped, **{"from": before, "to": after})
        assert oscal.status_code == 200, oscal.text
        result = oscal.json()["assessment-results"]["results"][0]
        assert result["start"].startswith(start.isoformat()[:19])
        assert result["end"].startswith(end.isoformat()[:19])

        # Evidence first collected after the window does not exist for the scoped token.
        rotated = history.rotated_digest
        hidden = _get(url, f"/evidence/{rotated}", scoped)
        assert hidden.status_code == 404
        assert "within this token's window" in hidden.json()["detail"]
        shown = _get(url, f"/evidence/{rotated}", full)
        assert shown.status_code == 200
        assert hashlib.sha256(shown.content).hexdigest() == rotated
        in_window = results["items"][0]["evidence"][0]
        old = _get(url, f"/evidence/{in_window}", scoped)
        assert old.status_code == 200
        assert hashlib.sha256(old.content).hexdigest() == in_window
        assert _get(url, f"/evidence/{'0' * 64}", full).status_code == 404


def test_there_is_no_route_that_writes(history, capsys):
    tok = token(capsys, history.config)
    with api_server(history.config) as url:
        spec = requests.get(url + "/openapi.json", timeout=60).json()
        assert spec["paths"], "the OpenAPI document lists the routes"
        for path, operations in spec["paths"].items():
            assert set(operations) == {"get"}, path
            concrete = path.replace("{digest}", history.rotated_digest)
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                response = requests.request(method, url + concrete, timeout=60,
                                            headers={"Authorization": f"Bearer {tok}"})
                assert response.status_code == 405, (method, path, response.status_code)


def test_every_access_is_logged_and_sealed_into_the_ledger(history, capsys):
    tok = token(capsys, history.config, "--name", "auditor-kim")
    with api_server(history.config) as url:
        assert _get(url, "/controls", tok, control="A.8.24").status_code == 200
        assert _get(url, "/runs").status_code == 401
        assert requests.delete(url + "/runs", timeout=60).status_code == 405
        assert _get(url, f"/evidence/{history.rotated_digest}", tok).status_code == 200
    rows = _access_rows(history.database_url)
    assert [(r.token_name, r.method, r.status) for r in rows] == [
        ("auditor-kim", "GET", 200), (None, "GET", 401), (None, "DELETE", 405),
        ("auditor-kim", "GET", 200)]
    assert rows[0].target == "/controls?control=A.8.24"
    assert rows[0].role == "auditor" and rows[0].client == "127.0.0.1"
    assert all(r.sealed_run is None for r in rows)

    cfg = configuration.load(str(history.config))
    engine = engine_for(cfg.database)
    signer = load_or_create_signer(cfg.signing_key)
    posture = controls_json(capsys, history.config)
    first = access_log.seal_pending(engine, signer)
    assert len(first) == 1
    assert access_log.seal_pending(engine, signer) == [], "nothing is sealed twice"
    with api_server(history.config) as url:
        assert _get(url, "/runs", tok, source=access_log.SOURCE).json()["total"] == 1
    second = access_log.seal_pending(engine, signer)
    assert len(second) == 1
    rows = _access_rows(history.database_url)
    assert [r.sealed_run for r in rows] == first * 4 + second
    code, out, _ = annexa(capsys, history.config, "verify")
    assert code == 0, out
    assert "ledger intact: 4 runs" in out
    assert controls_json(capsys, history.config) == posture, "the log never moves a control"

    # The sealed entries are evidence: their blobs say who read what, and the chain covers them.
    with engine.connect() as conn:
        versions = conn.execute(sa.text(
            "SELECT key, digest, valid_from_run, valid_to_run FROM resource_versions "
            "WHERE kind = 'annexa.api_access' ORDER BY id")).all()
    assert [v.valid_from_run for v in versions] == first * 4 + second
    assert [v.valid_to_run for v in versions] == second * 4 + [None], \
        "each sealing run covers exactly the entries that it sealed"
    with api_server(history.config) as url:
        entry = _get(url, f"/evidence/{versions[0].digest}", tok).json()
    assert entry["token_name"] == "auditor-kim"
    assert entry["target"] == "/controls?control=A.8.24" and entry["status"] == 200
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM resource_versions WHERE key = :k"),
                     {"k": versions[1].key})
    engine.dispose()
    code, out, _ = annexa(capsys, history.config, "verify")
    assert code == 1
    assert f"run {first[0]}" in out and "Merkle root does not match" in out


def test_annexa_run_serves_the_api_and_seals_its_log_at_shutdown(history, capsys):
    tok = token(capsys, history.config, "--name", "svc")
    cfg = configuration.load(str(history.config))  # the API on a free port (tests/helpers.py)
    load_all()
    collected = threading.Event()
    service = Service(cfg, engine_for(cfg.database), load_or_create_signer(cfg.signing_key),
                      on_run=lambda _: collected.set(), verify_every=None)
    thread = threading.Thread(target=service.serve, kwargs={"install_signals": False})
    thread.start()
    try:
        assert collected.wait(120), "the service ran no collection at start"
        assert service.api is not None
        response = _get(service.api.url, "/snapshot", tok, control="A.8.24")
        brief = _get(service.api.url, "/snapshot", tok, control="A.8.24", summary="true")
    finally:
        service.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert response.status_code == 200, response.text
    snap = response.json()
    assert [c["id"] for c in snap["controls"]] == ["A.8.24"]
    (rotation,) = [c for c in snap["controls"][0]["checks"] if c["id"] == ROTATION]
    assert rotation["status"] == "pass" and rotation["results"]
    assert brief.status_code == 200, brief.text
    (brief_rotation,) = [c for c in brief.json()["controls"][0]["checks"] if c["id"] == ROTATION]
    assert brief_rotation["results"] == [] and brief.json()["summary"] is True
    assert brief_rotation["resources"] == rotation["resources"]
    rows = _access_rows(history.database_url)
    assert [(r.token_name, r.status) for r in rows] == [("svc", 200), ("svc", 200)]
    assert rows[0].sealed_run is not None, "the service seals the log when it stops"
    code, out, _ = annexa(capsys, history.config, "verify")
    assert code == 0, out


def test_token_commands(history, capsys):
    config = history.config
    token(capsys, config, "--name", "a", "--window", "2026-01-01..2026-03-31", "--expires", "30d")
    code, out, _ = annexa(capsys, config, "token", "list", "--format", "json")
    assert code == 0
    (row,) = [r for r in json.loads(out) if r["name"] == "a"]
    assert row["window_start"].startswith("2026-01-01 00:00:00")
    assert row["window_end"].startswith("2026-03-31 23:59:59")
    assert "token_hash" not in row and row["revoked_at"] is None
    engine = sa.create_engine(history.database_url)
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT token_hash FROM api_tokens WHERE name = 'a'"))
    engine.dispose()
    assert len(stored) == 64 and not stored.startswith("annexa_"), "only a hash is stored"
    for args, message in (
        (["--window", "2026-03-01..2026-01-01"], "starts after it ends"),
        (["--window", "yesterday..today"], "--window start 'yesterday' is not an ISO 8601"),
        (["--window", "2026-01-01"], "is not a range"),
        (["--expires", "soon"], "--expires 'soon' is neither a duration"),
    ):
        code, _, err = annexa(capsys, config, "token", "create", "--role", "auditor", *args)
        assert code == 2 and message in err, err
    assert annexa(capsys, config, "token", "revoke", "nobody")[0] == 2


def test_nothing_is_served_when_the_access_cannot_be_logged(history, capsys):
    tok = token(capsys, history.config)
    with api_server(history.config) as url:
        assert _get(url, "/controls", tok).status_code == 200
        engine = sa.create_engine(history.database_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE api_access_log"))
        engine.dispose()
        refused = _get(url, "/controls", tok)
    assert refused.status_code == 503
    assert refused.json() == {"detail": "the access could not be logged, so it is not served"}
