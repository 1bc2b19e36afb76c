"""`annexa collect` of an Entra tenant at scale, against the Graph emulator: requests per user
(split by listing), wall time, peak RSS, and the blobs that an unchanged second run adds, on
SQLite.

    python bench/entra_scale.py                    # 1,000 and 10,000 users
    python bench/entra_scale.py --n 10000          # one scale
    python bench/entra_scale.py --db postgresql    # PostgreSQL instead

The emulator (collector/demo/emulators/entra.py, login and Graph on one loopback HTTPS server)
runs in this process and counts every request; its pages are as large as Graph's (999, 500
users with signInActivity). `annexa` runs as a child process, through the real
DefaultAzureCredential token flow, so its peak RSS is its own (from wait4)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from bench.aws_scale import last_run, machine, run_child
from bench.measure import database
from collector.demo.emulators import DEMO_TENANT, entra
from collector.demo.emulators.entra_seed import scale_tenant

SOURCE = "entra-bench"
TARGET_REQUESTS_PER_USER = 0.02


def write_config(workdir: Path, db_url: str, api: entra.FakeApi) -> Path:
    cfg = {"database": db_url, "signing_key": str(workdir / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0},
           "sources": [{**entra.source_for(api, DEMO_TENANT, name=SOURCE), "schedule": "1h"}]}
    path = workdir / "annexa-entra.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(config: Path, *args: str, log: Path):  # type: ignore[no-untyped-def]
    child = run_child([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                      log, env=entra.credential_env(DEMO_TENANT))
    if child.code != 0:
        raise RuntimeError(f"annexa {' '.join(args)} exited {child.code}:\n{child.output[-3000:]}")
    return child


def split(calls: Counter[str]) -> str:
    return ", ".join(f"{name.removeprefix('graph.')} {count}"
                     for name, count in calls.most_common())


def bench(api: entra.FakeApi, tenant: entra.Tenant, n: int, db: str, workdir: Path) -> None:
    seeded = scale_tenant(DEMO_TENANT, n)
    for name in vars(seeded):
        setattr(tenant, name, getattr(seeded, name))
    with database(db, workdir) as url:
        config = write_config(workdir, url, api)
        annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
        for run in (1, 2):
            api.reset_calls()
            child = annexa(config, "collect", log=workdir / f"collect-{run}.log")
            calls = Counter(api.calls)
            _, status, resources, blobs, _, _ = last_run(url, SOURCE)
            graph = sum(c for name, c in calls.items() if name.startswith("graph."))
            total = sum(calls.values())
            print(f"{n:>6} {db:<10} {run:>3} {child.seconds:>7.1f} {resources:>9} "
                  f"{total:>8} {total / n:>8.4f} {graph / n:>8.4f} {child.peak_rss_mb:>11.0f} "
                  f"{blobs:>9} {status}", flush=True)
            print(f"{'':>8}requests: {split(calls)}")
    verdict = "within" if total / n <= TARGET_REQUESTS_PER_USER else "ABOVE"
    print(f"{'':>8}{verdict} the target of {TARGET_REQUESTS_PER_USER} requests per user")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="users (repeatable); "
                                                              "default 1000 and 10000")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{'users':>6} {'database':<10} {'run':>3} {'wall s':>7} {'resources':>9} "
          f"{'requests':>8} {'req/user':>8} {'graph/u':>8} {'peak RSS MB':>11} "
          f"{'new blobs':>9} status")
    tenant = entra.Tenant(id=DEMO_TENANT)
    api, _ = entra.start(tenant, page_size=entra.MAX_TOP)
    try:
        with tempfile.TemporaryDirectory(prefix="annexa-bench-entra-") as tmp:
            for n in args.n or [1000, 10000]:
                bench(api, tenant, n, args.db, Path(tmp))
    finally:
        api.stop()


if __name__ == "__main__":
    main()
