"""`annexa snapshot`: the state at any instant, with the evidence valid then."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from collector.db import engine_for
from collector.schema import now
from collector.snapshot import snapshot
from collector.store import decompress
from tests.bundle_history import History, build_history
from tests.helpers import annexa

MFA = "aws.iam.user_console_mfa_enabled"
ROTATION = "aws.kms.key_rotation_enabled"


@pytest.fixture
def history(tmp_path, database_url, moto_url) -> History:
    return build_history(tmp_path, database_url, moto_url)


def _snap(capsys, history: History, *args: str) -> dict:
    code, out, err = annexa(capsys, history.config, "snapshot", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def _check(snap: dict, control: str, check: str) -> dict:
    (ctl,) = [c for c in snap["controls"] if c["id"] == control]
    (chk,) = [c for c in ctl["checks"] if c["id"] == check]
    return chk


def _subjects(snap: dict) -> set[str]:
    return {r["subject"] for c in snap["controls"] for k in c["checks"] for r in k["results"]}


def test_snapshots_between_runs_show_the_state_of_the_earlier_run(history, capsys):
    first = _snap(capsys, history, "--at", history.after[0].isoformat())
    second = _snap(capsys, history, "--at", history.after[1].isoformat())
    third = _snap(capsys, history, "--at", history.after[2].isoformat())
    for snap, run in ((first, 0), (second, 1), (third, 2)):
        (source_run,) = snap["runs"]
        assert source_run["run"] == history.run_ids[run]
        assert source_run["seq"] == run + 1
        assert len(source_run["chain_hash"]) == 64

    # Run 1: alice has a console password and no MFA; the "orders" key does not rotate.
    mfa = _check(first, "A.8.5", MFA)
    assert mfa["failing_resources"] == [history.alice]
    (alice,) = [r for r in mfa["results"] if r["subject"] == history.alice]
    assert alice["status"] == "fail" and alice["reason"]
    rotation = _check(first, "A.8.24", ROTATION)
    assert rotation["failing_resources"] == [history.orders_key]
    assert [(r["subject"], r["status"]) for r in rotation["results"]] == [
        (history.orders_key, "fail")]
    a824 = {c["id"]: c for c in first["controls"]}["A.8.24"]
    assert a824["status"] == "fail"

    # Run 2: alice is gone, bob has no password, and the key rotates.
    assert history.alice not in _subjects(second)
    assert history.bob in _subjects(second)
    assert _check(second, "A.8.5", MFA)["failing_resources"] == []
    rotation2 = _check(second, "A.8.24", ROTATION)
    assert rotation2["status"] == "pass"
    assert [(r["subject"], r["status"]) for r in rotation2["results"]] == [
        (history.orders_key, "pass")]

    # Run 3: a second key that does not rotate.
    assert _check(third, "A.8.24", ROTATION)["failing_resources"] == [history.ledger_key]

    # The evidence of the key changed with its rotation: each snapshot names the version of
    # its own run, and the failing result rests on the version valid then.
    def key_digest(snap: dict) -> str:
        a824 = {c["id"]: c for c in snap["controls"]}["A.8.24"]
        (version,) = [v for v in a824["evidence"] if v["key"] == history.orders_key]
        return version["digest"]

    assert key_digest(first) != key_digest(second) == key_digest(third)
    assert alice["evidence"] and rotation["results"][0]["evidence"] == [key_digest(first)]
    a85 = {c["id"]: c for c in first["controls"]}["A.8.5"]
    assert history.alice in {v["key"] for v in a85["evidence"]}
    assert history.alice not in {v["key"] for v in
                                 {c["id"]: c for c in second["controls"]}["A.8.5"]["evidence"]}


def test_the_evidence_digests_are_the_stored_blobs_of_that_run(history, capsys):
    snap = _snap(capsys, history, "--at", history.after[0].isoformat(), "--control", "A.8.24")
    (control,) = snap["controls"]
    assert history.orders_key in {v["key"] for v in control["evidence"]}
    engine = sa.create_engine(history.database_url)
    with engine.connect() as conn:
        for version in control["evidence"]:
            body = conn.scalar(sa.text("SELECT body FROM blobs WHERE digest = :d"),
                               {"d": version["digest"]})
            data = decompress(body)
            assert hashlib.sha256(data).hexdigest() == version["digest"]
            if version["kind"] == "aws.kms.key":
                assert json.loads(data)["Arn"] == version["key"]
            valid = conn.execute(sa.text(
                "SELECT valid_from_run, valid_to_run FROM resource_versions WHERE key = :k "
                "AND digest = :d"), {"k": version["key"], "d": version["digest"]}).one()
            run = history.run_ids[0]
            assert valid.valid_from_run <= run and (valid.valid_to_run or run + 1) > run
    engine.dispose()


def test_any_instant_works_not_only_run_times(history, capsys):
    before = _snap(capsys, history, "--at", (history.before - timedelta(days=1)).isoformat())
    assert before["runs"] == []
    assert {c["status"] for c in before["controls"] if c["checks"]} == {"unknown"}
    # A run counts from the instant it finished, to the microsecond.
    edge = _snap(capsys, history, "--at", history.finished[1].isoformat())
    assert edge["runs"][0]["run"] == history.run_ids[1]
    just_before = _snap(capsys, history, "--at",
                        (history.finished[1] - timedelta(microseconds=1)).isoformat())
    assert just_before["runs"][0]["run"] == history.run_ids[0]
    # A bare date is the end of that day (UTC); no --at is now.
    today = _snap(capsys, history, "--at", now().date().isoformat())
    latest = _snap(capsys, history)
    assert today["runs"] == latest["runs"] and latest["runs"][0]["run"] == history.run_ids[2]


def test_control_filter_table_and_bad_input(history, capsys):
    snap = _snap(capsys, history, "--control", "A.8.24", "--control", "A.8.5")
    assert [c["id"] for c in snap["controls"]] == ["A.8.5", "A.8.24"]
    code, out, _ = annexa(capsys, history.config, "snapshot", "--at",
                          history.after[0].isoformat(), "--control", "A.8.24")
    assert code == 0
    runs = out.splitlines()[1:3]
    assert runs[0].split()[:4] == ["source", "run", "seq", "status"]
    assert runs[1].split()[:3] == ["aws-test", str(history.run_ids[0]), "#1"]
    assert f"FAIL   {history.orders_key}: " in out
    assert "A.8.24   fail" in out
    for args, message in ((["--control", "A.9.99"], "'A.9.99' is not an Annex A 2022 control"),
                          (["--at", "last tuesday"], "--at 'last tuesday' is not an ISO 8601")):
        code, _, err = annexa(capsys, history.config, "snapshot", *args)
        assert code == 2 and message in err, err


def test_snapshot_queries_do_not_grow_with_the_history(history, database_url, capsys):
    """A snapshot costs a fixed number of statements per source, however long the history."""
    engine = engine_for(database_url)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    counts = []
    for at in (history.after[0], history.after[2]):
        statements.clear()
        with engine.connect() as conn:
            snap = snapshot(conn, at)
        assert snap["runs"]
        counts.append(len(statements))
    engine.dispose()
    assert counts[0] == counts[1], counts


def test_runs_sealed_without_a_summary_give_the_same_snapshot(history, database_url):
    """Runs sealed before result counts were kept on them are counted from their results."""
    engine = engine_for(database_url)
    with engine.connect() as conn:
        kept = [snapshot(conn, at) for at in history.after]
        failing = [snapshot(conn, at, failing_only=True) for at in history.after]
    assert any(c["status"] == "fail" for snap in kept for c in snap["controls"])
    with engine.begin() as conn:
        assert conn.execute(sa.text("UPDATE runs SET result_counts = NULL")).rowcount
    with engine.connect() as conn:
        assert [snapshot(conn, at) for at in history.after] == kept
        assert [snapshot(conn, at, failing_only=True) for at in history.after] == failing
    engine.dispose()


def test_summary_gives_the_statuses_and_counts_without_listing(history, capsys):
    for at in history.after:
        full = _snap(capsys, history, "--at", at.isoformat())
        brief = _snap(capsys, history, "--at", at.isoformat(), "--summary")
        assert brief["summary"] and brief["runs"] == full["runs"]
        assert not _subjects(brief) and not any(c["evidence"] for c in brief["controls"])
        assert [(c["id"], c["status"], [(k["id"], k["status"], k["resources"])
                                        for k in c["checks"]]) for c in brief["controls"]] == [
            (c["id"], c["status"], [(k["id"], k["status"], k["resources"]) for k in c["checks"]])
            for c in full["controls"]]
    assert any(c["status"] == "fail" for c in full["controls"])
