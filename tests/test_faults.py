"""Faults survived, nothing lost or invented: a collector killed with SIGKILL while it fetches,
writes or seals, the PostgreSQL server restarted while a run writes or seals, and SQLite's disk
filling up mid-run. The
collector is a real `annexa collect` process on a PostgreSQL server of these tests' own, and
it is held at the phase by what would hold it there in life: an API answer that has not come,
a table another session has locked, the chain lock another seal holds.

After each fault: the posture is still the last sealed run's (nothing of the broken run
counts), `verify` passes, and the next run's posture equals that of a clean store that
collected the same data once."""

from __future__ import annotations

import base64
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.synthetic import SCOPE, resources
from checks.registry import load_all
from collector import migrate
from collector.chain import verify
from collector.config import SourceConfig
from collector.db import engine_for
from collector.demo.emulators import okta
from collector.ledger import load_or_create_signer
from collector.locks import _CHAIN_CLASS
from collector.model import Resource, Scope
from collector.pipeline import collect_source
from collector.posture import control_states
from collector.schema import now
from connectors.okta import SourceUnreachable
from tests.fault_support import (
    PHASE_TIMEOUT,
    CuttingProxy,
    PrivatePostgres,
    collector,
    private_postgres,
    wait_until_blocked,
)
from tests.helpers import annexa, controls_json, errors, evidence, failing_by_check
from tests.okta_support import OktaFake, okta_fake, okta_server, write_config

__all__ = ["okta_fake", "okta_server"]  # fixtures

Posture = tuple[dict[str, str], dict[str, set[str]]]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def _store(server: PrivatePostgres, tmp_path: Path, fake: OktaFake, name: str) -> Path:
    where = tmp_path / name
    where.mkdir()
    return write_config(where, server.fresh_database(f"faults_{uuid.uuid4().hex[:10]}"), fake)


def _posture(capsys: pytest.CaptureFixture[str], config: Path) -> Posture:
    controls = controls_json(capsys, config)
    return {c["id"]: c["status"] for c in controls}, failing_by_check(controls)


def _engine(config: Path) -> sa.Engine:
    from collector.config import load

    return sa.create_engine(load(str(config)).database)


def _lose_mfa(fake: OktaFake) -> None:
    """A change the next run must record: one user's factors are gone."""
    judy = fake.user("judy.reader")["id"]
    fake.org.factors[judy] = []


@contextmanager
def _held(phase: str, fake: OktaFake, engine: sa.Engine) -> Iterator[Callable[[], None]]:
    """Hold the next collection at `phase`; yields a function that returns once it is held."""
    if phase == "fetching":
        entered, release = threading.Event(), threading.Event()

        def unanswered(_request: object) -> object:
            entered.set()
            release.wait(PHASE_TIMEOUT)
            return okta.okta_error(503, "E0000009", "Internal Server Error")

        fake.api.fail(r"^/api/v1/users", unanswered)
        try:
            yield lambda: None if entered.wait(PHASE_TIMEOUT) else pytest.fail(
                "the collector never asked for the users")
        finally:
            release.set()
            fake.api.heal()
        return
    with engine.connect() as conn:
        if phase == "writing":
            # Reads go on; the run's first insert of new evidence waits.
            conn.execute(sa.text("LOCK TABLE blobs IN EXCLUSIVE MODE"))
            yield lambda: wait_until_blocked(engine)
        else:
            conn.execute(sa.text("SELECT pg_advisory_lock(:c, 0)"), {"c": _CHAIN_CLASS})
            yield lambda: wait_until_blocked(engine, "advisory")
        try:
            conn.rollback()
            conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        except sa.exc.OperationalError:
            pass  # the server was restarted under it, which ended the hold


def _runs(engine: sa.Engine) -> list[tuple[str, int | None, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT status, seq, message FROM runs ORDER BY id"))]


@pytest.mark.parametrize("phase", ["fetching", "writing", "sealing"])
def test_a_collector_killed_in_any_phase_loses_and_invents_nothing(
        postgres_server, okta_fake, tmp_path, capsys, phase):
    config = _store(postgres_server, tmp_path, okta_fake, "faulted")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    before = _posture(capsys, config)
    _lose_mfa(okta_fake)
    engine = _engine(config)
    try:
        with _held(phase, okta_fake, engine) as reached:
            proc = collector(config)
            try:
                reached()
            finally:
                proc.kill()
                proc.communicate(timeout=PHASE_TIMEOUT)
        assert _posture(capsys, config) == before, "the killed run's evidence counts"
        assert annexa(capsys, config, "verify")[0] == 0

        code, _, err = annexa(capsys, config, "collect", "--wait", str(PHASE_TIMEOUT))
        assert code == 0, err
        runs = _runs(engine)
    finally:
        engine.dispose()
    assert [status for status, *_ in runs] == ["complete", "interrupted", "complete"]
    assert runs[1][2] == "the collecting process stopped before sealing"
    assert annexa(capsys, config, "verify")[0] == 0

    clean = _store(postgres_server, tmp_path, okta_fake, "clean")
    assert annexa(capsys, clean, "db", "upgrade")[0] == 0
    assert annexa(capsys, clean, "collect")[0] == 0
    after, expected = _posture(capsys, config), _posture(capsys, clean)
    assert after == expected
    assert after != before, "the change after the fault was not collected"


@pytest.mark.parametrize("phase", ["writing", "sealing"])
def test_a_database_restarted_under_a_run_loses_and_invents_nothing(
        postgres_server, okta_fake, tmp_path, capsys, phase):
    config = _store(postgres_server, tmp_path, okta_fake, "faulted")
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    _lose_mfa(okta_fake)
    engine = _engine(config)
    try:
        with _held(phase, okta_fake, engine) as reached:
            proc = collector(config)
            reached()
            postgres_server.restart()
            out, err = proc.communicate(timeout=PHASE_TIMEOUT)
        if phase == "writing":
            # What the run had not committed went with its session: it failed, and says why.
            assert proc.returncode == 1, err
            assert "okta-test: failed" in out
            assert "source failed: the database connection was lost: OperationalError" in err, err
        else:
            # Its evidence was all written: the seal is made again once the server is back.
            assert proc.returncode == 0, err
            assert "okta-test: complete" in out
        assert annexa(capsys, config, "verify")[0] == 0
        code, _, err = annexa(capsys, config, "collect")
        assert code == 0, err
        statuses = [status for status, *_ in _runs(engine)]
    finally:
        engine.dispose()
    assert statuses == ["complete", "failed" if phase == "writing" else "complete", "complete"]
    assert annexa(capsys, config, "verify")[0] == 0
    clean = _store(postgres_server, tmp_path, okta_fake, "clean")
    assert annexa(capsys, clean, "db", "upgrade")[0] == 0
    assert annexa(capsys, clean, "collect")[0] == 0
    assert _posture(capsys, config) == _posture(capsys, clean)


# --- SQLite on a full disk -------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MB tmpfs: the first run fits, a run of bulky evidence does not."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"mounting a tmpfs needs root, as CI runs: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _bulky(n: int) -> list[Scope | Resource]:
    """Resources whose bodies do not compress: n of them take about n * 3 KB."""
    rng = random.Random(n)
    items: list[Scope | Resource] = [SCOPE]
    for item in resources(n):
        if isinstance(item, Resource):
            noise = base64.b64encode(rng.randbytes(3000)).decode()
            item = SCOPE.resource(item.kind, item.key, {**item.data, "Notes": noise},
                                  item.region)
        items.append(item)
    return items


def _stored_posture(engine: sa.Engine) -> dict[str, tuple[str, list[str]]]:
    with engine.connect() as conn:
        states = control_states(conn, now(), timedelta(days=2))
    return {s.id: (s.status, sorted(f for c in s.checks for f in c.failing)) for s in states}


def test_sqlite_filling_its_disk_mid_run_loses_and_invents_nothing(small_disk, tmp_path):
    load_all()
    url = f"sqlite:///{small_disk / 'annexa.db'}"
    migrate.upgrade(engine_for(url, check_schema=False))
    engine = engine_for(url)
    signer = load_or_create_signer(tmp_path / "signing.key")
    source = SourceConfig(name="disk", kind="aws", regions=["us-east-1"])
    try:
        assert collect_source(engine, source, signer, items=_bulky(50)).status == "complete"
        before = _stored_posture(engine)

        out = collect_source(engine, source, signer, items=_bulky(3000))
        assert out.status == "failed"
        assert "database or disk is full" in (out.message or ""), out.message
        assert _stored_posture(engine) != before  # a failed run makes passes unknown
        assert verify(engine, signer.public).ok

        subprocess.run(["mount", "-o", "remount,size=256m", str(small_disk)], check=True)
        assert collect_source(engine, source, signer, items=_bulky(3000)).status == "complete"
        report = verify(engine, signer.public)
        assert report.ok, report.problems
        after = _stored_posture(engine)
    finally:
        engine.dispose()

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    migrate.upgrade(engine_for(clean_url, check_schema=False))
    clean = engine_for(clean_url)
    try:
        assert collect_source(clean, source, signer, items=_bulky(3000)).status == "complete"
        assert after == _stored_posture(clean)
    finally:
        clean.dispose()


# --- a network that cuts connections ---------------------------------------------------------

def _through(fake: OktaFake, proxy: CuttingProxy, **options: object) -> list[object]:
    return fake.collect(org_url=proxy.url, timeout=2, **options)


@pytest.mark.parametrize("cut_after", [0, 300, 3000],
                         ids=["before-the-handshake", "in-the-handshake", "in-the-answer"])
def test_connections_cut_or_stalled_by_the_network_are_retried_to_identical_evidence(
        okta_fake, cut_after):
    clean = okta_fake.collect()
    port = int(okta_fake.api.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(("127.0.0.1", port), cut=lambda n: n % 3 == 0, cut_after=cut_after,
                         stall=lambda n: n == 5)
    try:
        # One call can meet up to seven cut connections in a row here (threads retrying side
        # by side share the proxy's numbering), near the default budget of eight attempts: the
        # budget is raised so the test is about the evidence, not that margin.
        items = _through(okta_fake, proxy, max_attempts=20)
    finally:
        proxy.close()
    assert proxy.cuts > 0
    assert not errors(items), errors(items)
    assert evidence(items) == evidence(clean)


def test_an_api_whose_every_connection_is_cut_fails_the_source_naming_the_cause(okta_fake):
    port = int(okta_fake.api.url.rsplit(":", 1)[1])
    proxy = CuttingProxy(("127.0.0.1", port), cut=lambda _n: True, cut_after=3000)
    try:
        with pytest.raises(SourceUnreachable, match=r"no answer ConnectionError"):
            _through(okta_fake, proxy, max_attempts=2)
    finally:
        proxy.close()
    assert proxy.cuts >= 2, "the call was not tried again"


# --- the clock stepping backwards ------------------------------------------------------------

def test_a_clock_set_back_between_runs_loses_and_invents_nothing(okta_fake, tmp_path, capsys):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'annexa.db'}", okta_fake)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    assert annexa(capsys, config, "collect")[0] == 0
    before = _posture(capsys, config)
    _lose_mfa(okta_fake)
    # libfaketime (Debian's faketime) sets this one process's clock two days back: a run
    # sealed now would say what was true two days ago, before the first run looked.
    set_back = subprocess.run(["faketime", "-f", "-2d", sys.executable, "-m", "collector.cli",
                               "--config", str(config), "collect"],
                              capture_output=True, text=True, timeout=PHASE_TIMEOUT)
    assert set_back.returncode == 1, set_back.stderr
    assert "okta-test: not collected: the clock reads" in set_back.stderr
    assert "before the newest sealed run (#1 of okta-test)" in set_back.stderr
    engine = _engine(config)
    try:
        assert [status for status, *_ in _runs(engine)] == ["complete"]
    finally:
        engine.dispose()
    assert _posture(capsys, config) == before

    # A clock a little behind (within the skew machines may have) still collects.
    behind = subprocess.run(["faketime", "-f", "-1m", sys.executable, "-m", "collector.cli",
                             "--config", str(config), "collect"],
                            capture_output=True, text=True, timeout=PHASE_TIMEOUT)
    assert behind.returncode == 0, behind.stderr
    assert annexa(capsys, config, "verify")[0] == 0
    (tmp_path / "clean").mkdir()
    clean = write_config(tmp_path / "clean", f"sqlite:///{tmp_path / 'clean.db'}", okta_fake)
    assert annexa(capsys, clean, "db", "upgrade")[0] == 0
    assert annexa(capsys, clean, "collect")[0] == 0
    assert _posture(capsys, config) == _posture(capsys, clean)
