"""Several processes against one store: one run of a source at a time, seals that keep one
verifiable chain, and nothing counted twice."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from checks.registry import load_all
from collector import migrate
from collector.chain import RUNS, verify
from collector.db import engine_for
from collector.ledger import load_or_create_signer

ROOT = Path(__file__).resolve().parent.parent

# A collector process: collects `source` from synthetic resources. With "hold" it stops after
# streaming, holding the run open, until a line arrives on stdin.
_COLLECT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from bench.synthetic import resources
    from checks.registry import load_all
    from collector.config import SourceConfig
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.locks import SourceBusy
    from collector.pipeline import collect_source

    url, key, source, mode, wait = sys.argv[1:6]

    def stream():
        yield from resources(1200)
        if mode == "hold":
            print("holding", flush=True)
            sys.stdin.readline()

    load_all()
    try:
        out = collect_source(engine_for(url), SourceConfig(name=source, kind="aws"),
                             load_or_create_signer(Path(key)), items=stream(), writer="inline",
                             wait=float(wait))
    except SourceBusy as exc:
        print("busy:", exc, flush=True)
        sys.exit(3)
    print("done", out.status, out.run_id, out.seq, out.stats.results, flush=True)
""")


@pytest.fixture
def store(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    migrate.upgrade(engine_for(database_url, check_schema=False))
    load_all()
    engine = engine_for(database_url)
    key = tmp_path / "signing.key"
    load_or_create_signer(key)  # made once, before the processes race to make it
    yield engine, database_url, key
    engine.dispose()


def _start(url: str, key: Path, source: str, mode: str = "run",
           wait: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _COLLECT, url, str(key), source, mode,
                             str(wait)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out.strip().splitlines()[-1]


def _valid_results(engine: sa.Engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM check_results WHERE source = :s AND "
                                   "valid_to_run IS NULL"), {"s": source})


def test_a_second_and_third_collector_of_a_busy_source_are_refused(store) -> None:
    engine, url, key = store
    holder = _start(url, key, "aws-prod", "hold")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    others = [_start(url, key, "aws-prod") for _ in range(2)]
    for proc in others:
        code, last = _finish(proc)
        assert code == 3, last
        assert last.startswith("busy: source 'aws-prod' is being collected by another process")
        assert "nothing was collected" in last
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    code, last = _finish(holder)
    assert code == 0 and last.startswith("done complete"), last
    with engine.connect() as conn:
        runs = conn.execute(sa.select(RUNS.c.status, RUNS.c.results)).all()
    assert [r.status for r in runs] == ["complete"], "the refused collectors left no run"
    assert _valid_results(engine, "aws-prod") == runs[0].results
    report = verify(engine, load_or_create_signer(key).public)
    assert report.ok, report.problems


def test_collectors_started_together_take_turns_and_count_nothing_twice(store) -> None:
    engine, url, key = store
    # Three of one source wait for each other; two other sources seal in between.
    procs = [_start(url, key, "aws-prod", wait=90) for _ in range(3)]
    procs += [_start(url, key, name, wait=90) for name in ("aws-dev", "aws-test")]
    outcomes = [_finish(proc) for proc in procs]
    assert all(code == 0 and last.startswith("done complete") for code, last in outcomes), \
        outcomes
    results = {int(last.split()[4]) for _, last in outcomes}
    assert len(results) == 1, "every run judged the same estate"
    with engine.connect() as conn:
        runs = conn.execute(sa.select(RUNS.c.source, RUNS.c.seq, RUNS.c.result_counts)
                            .order_by(RUNS.c.seq)).all()
    assert [r.seq for r in runs] == [1, 2, 3, 4, 5]
    counts = {r.result_counts for r in runs}
    assert len(counts) == 1, "each run's summary counts the estate once"
    total = sum(n for by_status in json.loads(counts.pop()).values() for n in by_status.values())
    for source in ("aws-prod", "aws-dev", "aws-test"):
        assert _valid_results(engine, source) == total
    report = verify(engine, load_or_create_signer(key).public)
    assert report.ok, report.problems


def test_a_lock_left_by_a_killed_collector_is_taken_over(store) -> None:
    engine, url, key = store
    holder = _start(url, key, "aws-prod", "hold")
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    holder.kill()
    holder.wait(timeout=30)
    code, last = _finish(_start(url, key, "aws-prod", wait=30))
    assert code == 0 and last.startswith("done complete"), last
    with engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(sa.select(RUNS.c.status).order_by(RUNS.c.seq))]
    assert statuses == ["interrupted", "complete"]
    assert verify(engine, load_or_create_signer(key).public).ok
