"""Runs whose evidence is written by a writer process: the same ledger as an inline writer,
failures that name their cause, and nothing lost when the collecting process is killed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from bench.synthetic import SCOPE, resources
from checks.registry import load_all, resource_checks
from collector import migrate
from collector.chain import RUNS, verify
from collector.config import SourceConfig
from collector.db import engine_for
from collector.ledger import load_or_create_signer
from collector.model import Scope
from collector.pipeline import collect_source
from tests.helpers import annexa, emulator_client, write_config

ROOT = Path(__file__).resolve().parent.parent
SCOPE_KEY = SCOPE.key


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    yield engine
    engine.dispose()


def _source(name: str) -> SourceConfig:
    return SourceConfig(name=name, kind="aws", regions=["us-east-1"])


def test_a_writer_process_seals_what_an_inline_writer_seals(engine, tmp_path):
    signer = load_or_create_signer(tmp_path / "signing.key")
    # 2,500 resources are several batches; the next days change some, and the last drops 300.
    days = [(2500, 0, 0.0), (2500, 1, 0.05), (2200, 2, 0.05)]
    for n, day, churn in days:
        inline = collect_source(engine, _source("inline"), signer,
                                items=resources(n, day, churn), writer="inline")
        remote = collect_source(engine, _source("remote"), signer,
                                items=resources(n, day, churn), writer="process")
        assert (inline.extra["writer"], remote.extra["writer"]) == ("inline", "process")
        assert inline.status == remote.status == "complete", remote.message
        assert remote.extra["writer_peak_rss_kb"] > 0
        assert remote.extra["collector_peak_rss_kb_with_writer"] > 0
        assert "collector_peak_rss_kb_with_writer" not in inline.extra
        # Blobs are not compared: the inline run stored them first, for both sources.
        assert remote.stats.new_blobs == 0
        for field in ("resources", "results", "new_versions", "new_results",
                      "closed_versions", "closed_results", "by_status"):
            assert getattr(remote.stats, field) == getattr(inline.stats, field), (day, field)
        with engine.connect() as conn:
            sealed = {row.source: (row.merkle_root, row.result_counts, row.resources)
                      for row in conn.execute(sa.select(RUNS).where(
                          RUNS.c.id.in_((inline.run_id, remote.run_id))))}
        assert sealed["remote"] == sealed["inline"], day
    # The last day closes the 300 gone and each changed version's predecessor.
    assert remote.stats.closed_versions == 300 + remote.stats.new_versions > 300
    report = verify(engine, signer.public)
    assert report.ok, report.problems


def test_a_large_first_run_moves_to_a_writer_process_and_seals_what_inline_seals(engine,
                                                                                  tmp_path):
    from collector.writer_switch import FIRST_RUN_PROCESS_FROM

    signer = load_or_create_signer(tmp_path / "signing.key")
    n = FIRST_RUN_PROCESS_FROM + 1500  # the handover falls inside a batch's worth of results
    inline = collect_source(engine, _source("inline"), signer, items=resources(n),
                            writer="inline")
    first = collect_source(engine, _source("first"), signer, items=resources(n))
    assert first.status == inline.status == "complete", first.message
    assert first.extra["writer"] == (
        f"inline, then process from resource {FIRST_RUN_PROCESS_FROM + 1:,}")
    assert first.extra["writer_peak_rss_kb"] > 0
    for field in ("resources", "results", "new_versions", "new_results", "by_status"):
        assert getattr(first.stats, field) == getattr(inline.stats, field), field
    with engine.connect() as conn:
        sealed = {row.source: (row.merkle_root, row.result_counts, row.resources)
                  for row in conn.execute(sa.select(RUNS).where(
                      RUNS.c.id.in_((inline.run_id, first.run_id))))}
    assert sealed["first"] == sealed["inline"]
    # The next run knows the size: inline below PROCESS_WRITER_FROM, and it finds all of it.
    again = collect_source(engine, _source("first"), signer, items=resources(n))
    assert again.extra["writer"] == "inline"
    assert (again.stats.new_versions, again.stats.new_results,
            again.stats.closed_versions, again.stats.closed_results) == (0, 0, 0, 0)
    # A small first run never starts a process.
    small = collect_source(engine, _source("small"), signer, items=resources(50))
    assert small.extra["writer"] == "inline" and "writer_peak_rss_kb" not in small.extra
    report = verify(engine, signer.public)
    assert report.ok, report.problems


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_keys_that_need_quoting_are_found_again_by_the_next_run(engine, tmp_path, writer):
    from bench.synthetic import SCOPE

    # Lookups bind all keys of a batch at once (a text[] literal on PostgreSQL): quotes,
    # backslashes, separators and braces must reach the database as they are.
    keys = ['arn:aws:s3:::a"b', "arn:aws:s3:::back\\slash", "arn:aws:s3:::x,y {z}",
            "arn:aws:s3:::NULL", "arn:aws:s3:::spa ce\tand\u00e9", 'arn:aws:s3:::\\"']
    items = [SCOPE, *(SCOPE.resource("aws.s3.bucket", key, {"Name": key, "versioning": None})
                      for key in keys)]
    signer = load_or_create_signer(tmp_path / "signing.key")
    first = collect_source(engine, _source("odd"), signer, items=items, writer=writer)
    second = collect_source(engine, _source("odd"), signer, items=items, writer=writer)
    assert first.status == second.status == "complete", second.message
    assert first.stats.new_versions == len(keys) and first.stats.new_results > len(keys)
    assert (second.stats.new_versions, second.stats.new_results) == (0, 0)
    with engine.connect() as conn:
        stored = set(conn.scalars(sa.text("SELECT key FROM resource_versions "
                                          "WHERE source = 'odd' AND valid_to_run IS NULL")))
    assert stored == set(keys)
    assert verify(engine, signer.public).ok


def test_blobs_another_writer_stored_meanwhile_are_skipped_not_fatal(engine):
    from collector.store import _Driver, compress

    def row(name: str) -> tuple:
        return (name * 64, 1, compress(b"{}"), 1)

    with engine.connect() as conn:
        _Driver(conn).insert_blobs([row("a")])
        conn.commit()
        # The caller looked "a" up before it was stored: the batch still goes in, once.
        _Driver(conn).insert_blobs([row("b"), row("a"), row("c")])
        conn.commit()
        stored = conn.execute(sa.text("SELECT digest FROM blobs ORDER BY digest")).scalars()
        assert [d[0] for d in stored] == ["a", "b", "c"]


def test_a_fresh_store_gets_statistics_while_the_first_run_fills_it(engine, tmp_path):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's lookups name their index; PostgreSQL's planner needs statistics")
    tables = ("resource_versions", "check_results", "blobs")
    with engine.begin() as conn:
        for table in tables:  # only the run may analyse them
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    signer = load_or_create_signer(tmp_path / "signing.key")
    out = collect_source(engine, _source("fresh"), signer, items=resources(2500),
                         writer="inline")
    assert out.status == "complete", out.message

    def rows_counted() -> dict[str, float]:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(:t)"),
                {"t": list(tables)}).all())

    # Never analysed before (-1), they were analysed once, at the second batch, when they held
    # the first one's rows; 2,500 rows are not 16 times that, so not again.
    counted = rows_counted()
    assert counted["resource_versions"] == counted["blobs"] == 1000
    assert 1000 < counted["check_results"] < out.stats.new_results
    again = collect_source(engine, _source("fresh"), signer, items=resources(2500),
                           writer="inline")
    assert again.status == "complete" and again.stats.new_versions == 0
    assert rows_counted() == counted


def test_a_run_keeps_the_heap_it_found_out_of_cycle_collection_until_it_ends(engine, tmp_path):
    import gc

    signer = load_or_create_signer(tmp_path / "signing.key")
    seen: list[int] = []

    def stream(fail: bool):  # type: ignore[no-untyped-def]
        for i, item in enumerate(resources(1500)):
            if i % 500 == 0:  # the count walks the frozen objects
                seen.append(gc.get_freeze_count())
            yield item
        if fail:
            raise ConnectionError("the API went away")

    assert gc.get_freeze_count() == 0
    for fail in (False, True):
        seen.clear()
        out = collect_source(engine, _source("heap"), signer, items=stream(fail),
                             writer="inline")
        assert out.status == ("failed" if fail else "complete"), out.message
        assert min(seen) > 1000, "objects alive before the run were left to the collector"
        assert gc.get_freeze_count() == 0, "the run did not give the heap back"


def _refuse(engine: sa.Engine, table: str, message: str, key: str | None = None) -> None:
    """A trigger that makes `table` refuse every inserted row, or only the row of `key`."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            when = f"WHEN NEW.key = '{key}' " if key else ""
            conn.exec_driver_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} {when}BEGIN "
                                 f"SELECT RAISE(ABORT, '{message}'); END")
        else:
            when = f"NEW.key = '{key}'" if key else "true"
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
                f"IF {when} THEN RAISE EXCEPTION '{message}'; END IF; RETURN NEW; END$$")
            conn.exec_driver_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                                 "FOR EACH ROW EXECUTE FUNCTION refuse()")


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_a_refused_batch_loses_only_itself(engine, tmp_path, writer):
    items = list(resources(4500))
    refused = items[1 + 2500].key  # in the third batch of 1,000 resources
    _refuse(engine, "resource_versions", "resource_versions refuses that key", refused)
    signer = load_or_create_signer(tmp_path / "signing.key")
    out = collect_source(engine, _source("refusing"), signer, items=items, writer=writer)
    assert out.status == "failed"
    assert "resource_versions refuses that key" in (out.message or "")
    keys = [item.key for item in items[1:]]
    with engine.connect() as conn:
        stored = set(conn.scalars(sa.text(
            "SELECT key FROM resource_versions WHERE source = 'refusing'")))
        judged = set(conn.scalars(sa.text(
            "SELECT subject FROM check_results WHERE source = 'refusing'")))
    # Every batch before the refused one is kept, the refused one is gone whole, and nothing
    # is stored that was not handed over. How much after it is salvaged depends on how far the
    # run had gone when it learnt of the refusal: PostgreSQL's writer learns of it when it
    # looks up the batch read meanwhile, and a writer process only once the run waits for it.
    assert set(keys[:2000]) <= stored
    assert not stored & set(keys[2000:3000])
    assert stored <= set(keys[:2000]) | set(keys[3000:])
    assert judged - {SCOPE_KEY} == stored
    report = verify(engine, signer.public)
    assert report.ok, report.problems


@pytest.mark.parametrize("writer", ["inline", "process"])
def test_a_failing_writer_fails_the_run_and_names_the_cause(engine, tmp_path, writer):
    # Inline on PostgreSQL, a batch's writes are sent while the next one is read: its
    # failure must still end the run with the database's own words.
    signer = load_or_create_signer(tmp_path / "signing.key")
    _refuse(engine, "check_results", "check_results refuses rows")
    out = collect_source(engine, _source("big"), signer, items=resources(1500), writer=writer)
    assert out.status == "failed"
    assert ("evidence writer process failed" in (out.message or "")) == (writer == "process")
    assert "check_results refuses rows" in (out.message or "")
    assert out.seq is not None, "a failed run is sealed like any other"
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse" if engine.dialect.name == "sqlite"
                             else "DROP TRIGGER refuse ON check_results")
    again = collect_source(engine, _source("big"), signer, items=resources(1500),
                           writer=writer)
    assert again.status == "complete", again.message
    assert again.stats.resources == 1500
    report = verify(engine, signer.public)
    assert report.ok, report.problems


_KILLED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bench.synthetic import resources
    from checks.registry import load_all
    from collector.config import SourceConfig
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.pipeline import collect_source

    def stream():
        yield from resources(2500)
        print("streamed", flush=True)
        time.sleep(120)  # killed long before

    load_all()
    collect_source(engine_for(sys.argv[1]), SourceConfig(name="big", kind="aws"),
                   load_or_create_signer(Path(sys.argv[2])), items=stream(), writer="process")
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_killed_collector_leaves_its_writer_storing_what_arrived(engine, database_url,
                                                                  tmp_path):
    key = tmp_path / "signing.key"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, database_url, str(key)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "streamed"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1, "one writer process per run"
        writer = int(children[0])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 60
    while _alive(writer) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(writer), "the writer outlived the collector by a minute"
    with engine.connect() as conn:
        stored = conn.scalar(sa.text("SELECT COUNT(*) FROM resource_versions"))
        results = conn.scalar(sa.text("SELECT COUNT(*) FROM check_results"))
    # The collector had handed over two full batches, each with the results judged from its
    # resources (the third was still being filled).
    assert stored == 2000
    load_all()
    assert results == sum(len(resource_checks(r.kind))
                          for r in list(resources(2000))[1:] if not isinstance(r, Scope))
    signer = load_or_create_signer(key)
    after = collect_source(engine, _source("big"), signer, items=resources(10))
    assert after.extra["writer"] == "inline", "a small source's last run decides"
    with engine.connect() as conn:
        killed = conn.execute(sa.select(RUNS.c.status).where(RUNS.c.id < after.run_id)).one()
    assert killed.status == "interrupted"
    report = verify(engine, signer.public)
    assert report.ok, report.problems


def test_collect_with_a_writer_process_through_the_cli(tmp_path, database_url, moto_url,
                                                       capsys):
    client = emulator_client(moto_url)
    for i in range(5):
        client("iam", "us-east-1").create_user(UserName=f"user{i}")
    config = write_config(tmp_path, database_url, moto_url)
    cfg = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**cfg, "writer": "process"}))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, first, err = annexa(capsys, config, "collect")
    assert code == 0, err
    code, second, err = annexa(capsys, config, "collect")
    assert code == 0, err
    assert "(0 new versions, 0 new blobs)" in second
    stored = re.search(r"; (\d+) resources \((\d+) new versions", first)
    assert stored and int(stored[1]) == int(stored[2]) > 5, first
    code, out, _ = annexa(capsys, config, "verify")
    assert code == 0, out
