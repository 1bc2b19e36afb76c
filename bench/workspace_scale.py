"""`annexa collect` of a Google Workspace customer at scale, against the loopback fake of the
Admin SDK and the Cloud Identity Policy API: wall time, requests the fake received (total, per
call, per user), peak RSS, the blobs each run adds, and the planted gaps found, for a first run
and an unchanged second run.

    python bench/workspace_scale.py                        # 1,000 and 10,000 users, SQLite
    python bench/workspace_scale.py --n 20000 --db postgresql
    python bench/workspace_scale.py --quick                # 1,000 users, SQLite

The fake runs in this process on 127.0.0.1 with pages as large as Google's (500 users, 100
roles or policies, 200 role assignments); `annexa` runs as a child process started from a small
launcher, so its peak RSS is its own. Tokens come from the fake's token endpoint through the
real google-auth JWT flow, with the key file's token_uri pointing there.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
import yaml

from bench.aws_scale import machine, run_child
from bench.measure import database
from collector.demo.emulators import google_login
from collector.demo.emulators import google_workspace as fake
from collector.demo.emulators.server import FakeApi, ca_file

SOURCE = "workspace-bench"
UNITS = 20
# Every n-th user is planted with the gap; the rest are well configured.
NOT_ENROLLED, INACTIVE, DELEGATED = 10, 17, 50
UNENFORCED_UNIT = "/Dept-07"


def tenant(n: int) -> tuple[fake.Tenant, dict[str, int]]:
    """A customer of `n` users over UNITS org units, and how many of each gap it holds."""
    units = tuple(f"/Dept-{i:02d}" for i in range(UNITS))
    people = [fake.Person("admin", super_admin=True), fake.Person("admin2", super_admin=True)]
    for i in range(n - len(people)):
        unit = units[i % UNITS]
        people.append(fake.Person(
            f"user{i:06d}", unit, delegated_admin=i % DELEGATED == 0,
            enrolled=i % NOT_ENROLLED != 0, enforced=unit != UNENFORCED_UNIT,
            last_login_days=200 if i % INACTIVE == 0 else 3))
    settings = (
        fake.Setting("/", "security.two_step_verification_enforcement", fake.ENFORCED),
        fake.Setting(UNENFORCED_UNIT, "security.two_step_verification_enforcement",
                     fake.NOT_ENFORCED),
        fake.Setting("/", "security.password", fake.STRONG_PASSWORDS),
        *(fake.Setting(unit, "security.less_secure_apps", {"allowLessSecureApps": False})
          for unit in units),
    )
    expected = {
        "google_workspace.user_2sv_enrolled": sum(not p.enrolled for p in people),
        "google_workspace.user_2sv_enforced": sum(not p.enforced for p in people),
        "google_workspace.inactive_user_suspended": sum(
            p.last_login_days is not None and p.last_login_days > 90 for p in people),
        "google_workspace.admin_2sv_enrolled": sum(
            p.delegated_admin and not p.enrolled for p in people),
        "google_workspace.two_step_verification_enforced": 1,
    }
    return fake.Tenant("C05bench1x", "bench.example", "Bench Co", units, tuple(people),
                       settings), expected


def write_config(workdir: Path, db_url: str, options: dict[str, object]) -> Path:
    cfg = {"database": db_url, "signing_key": str(workdir / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0},
           "sources": [{"name": SOURCE, "kind": "google_workspace", "schedule": "1h",
                        **options}]}
    path = workdir / "annexa-workspace.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(config: Path, *args: str, log: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one `annexa` command."""
    child = run_child([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                      log)
    if child.code != 0:
        raise RuntimeError(f"annexa {' '.join(args)} exited {child.code}:\n"
                           f"{child.output[-3000:]}")
    return child.seconds, child.peak_rss_mb


def last_run(db_url: str) -> tuple[str, int, int, dict[str, int]]:
    """(status, resources, new blobs, failing subjects per check) of the source's last run."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            run_id, status, resources = conn.execute(sa.text(
                "SELECT id, status, resources FROM runs WHERE source = :s "
                "ORDER BY id DESC LIMIT 1"), {"s": SOURCE}).one()
            blobs = conn.scalar(sa.text("SELECT count(*) FROM blobs WHERE first_run = :r"),
                                {"r": run_id})
            failing = dict(conn.execute(sa.text(
                "SELECT check_id, count(*) FROM check_results WHERE source = :s "
                "AND status = 'fail' AND valid_from_run <= :r "
                "AND (valid_to_run IS NULL OR valid_to_run > :r) GROUP BY check_id"),
                {"s": SOURCE, "r": run_id}).all())
    finally:
        engine.dispose()
    return status, resources, int(blobs), {k: int(v) for k, v in failing.items()}


HEADER = (f"{'users':>6} {'database':<11} {'run':>3} {'wall s':>7} {'resources':>9} "
          f"{'requests':>8} {'req/user':>8} {'peak RSS MB':>11} {'new blobs':>9} status")


def bench_scale(workspace: fake.Workspace, n: int, dbs: list[str], workdir: Path) -> None:
    workspace.reset()
    started = time.monotonic()
    seeded, expected = tenant(n)
    workspace.add(seeded)
    key = workspace.key_file(workdir / f"sa-{n}.json", f"admin@{seeded.domain}")
    options = {"admin_email": f"admin@{seeded.domain}", "credentials_file": str(key),
               "api_endpoint": workspace.api.url, "ca_bundle": str(ca_file())}
    print(f"\n{n} users: seeded in {time.monotonic() - started:.1f}s; expected failures "
          f"{expected}", flush=True)
    print(HEADER)
    for db in dbs:
        with database(db, workdir) as url:
            config = write_config(workdir, url, options)
            annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
            for run in (1, 2):
                workspace.api.reset_calls()
                seconds, rss = annexa(config, "collect", log=workdir / f"collect-{run}.log")
                calls = dict(workspace.api.calls)
                status, resources, blobs, failing = last_run(url)
                total = sum(calls.values())
                print(f"{n:>6} {db:<11} {run:>3} {seconds:>7.1f} {resources:>9} {total:>8} "
                      f"{total / n:>8.4f} {rss:>11.0f} {blobs:>9} {status}", flush=True)
                print(f"{'':>8}requests: " + ", ".join(
                    f"{name} {count}" for name, count in sorted(calls.items())))
                found = {check: failing.get(check, 0) for check in expected}
                if found != expected:
                    raise SystemExit(f"planted failures missed or invented: {found} != "
                                     f"{expected}")
                pages = math.ceil(n / 500)
                print(f"{'':>8}users.list pages {calls.get('users.list')} (at 500 a page: "
                      f"{pages}); planted failures found: all {sum(expected.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append",
                        help="users (repeatable); default 1000 and 10000")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"),
                        help="database (repeatable); default sqlite")
    parser.add_argument("--quick", action="store_true", help="1,000 users on SQLite")
    args = parser.parse_args()
    ns = args.n or ([1000] if args.quick else [1000, 10000])
    dbs = args.db or ["sqlite"]
    print(f"machine: {machine()}")
    api = FakeApi("google_workspace", page_size=500).start()
    try:
        workspace = fake.install(api, google_login.Accounts())
        with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp:
            for n in ns:
                bench_scale(workspace, n, dbs, Path(tmp))
    finally:
        api.stop()


if __name__ == "__main__":
    main()
