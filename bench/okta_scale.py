"""`annexa collect` of an Okta org at scale, against the Okta emulator: requests per user
(split by listing), wall time, peak RSS, the blobs that an unchanged second run adds, and a
third, throttled run (a low rate limit per bucket and a storm of 429s) that must end with the
same results and no new blob, on SQLite.

    python bench/okta_scale.py                    # 1,000 and 10,000 users
    python bench/okta_scale.py --n 10000          # one scale
    python bench/okta_scale.py --db postgresql    # PostgreSQL instead
    python bench/okta_scale.py --connector --n 1000 --n 10000 --n 20000
                                                  # the connector alone: tracemalloc's peak

The emulator (collector/demo/emulators/okta.py) runs in this process and counts every request;
its pages are as large as Okta's (200 users). Its rate-limit windows last a second (Okta's a
minute) so that the throttled run waits seconds, not minutes. `annexa` runs as a child process
with the demo's SSWS token, so its peak RSS is its own (from wait4)."""

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
from collector.demo.emulators import okta
from collector.demo.emulators.okta_seed import scale_org

SOURCE = "okta-bench"
TARGET_REQUESTS_PER_USER = 1.05
# The throttled run: calls a second per bucket, and every STORM-th call refused with a 429.
THROTTLED_LIMIT, STORM = 120, 150


def write_config(workdir: Path, db_url: str, api: okta.FakeApi) -> Path:
    cfg = {"database": db_url, "signing_key": str(workdir / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0},
           "sources": [{**okta.source_for(api, name=SOURCE), "schedule": "1h"}]}
    path = workdir / "annexa-okta.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(config: Path, *args: str, log: Path):  # type: ignore[no-untyped-def]
    child = run_child([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                      log, env={okta.TOKEN_ENV: okta.DEMO_TOKEN})
    if child.code != 0:
        raise RuntimeError(f"annexa {' '.join(args)} exited {child.code}:\n{child.output[-3000:]}")
    return child


def split(calls: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in calls.most_common())


def bench(api: okta.FakeApi, limiter: okta.Limiter, org: okta.Org, n: int, db: str,
          workdir: Path) -> None:
    seeded = scale_org(n)
    for name in vars(seeded):
        setattr(org, name, getattr(seeded, name))
    org.window, org.rate_limit = 1.0, 10**9
    with database(db, workdir) as url:
        config = write_config(workdir, url, api)
        annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
        results = {}
        for run in (1, 2, 3):
            api.reset_calls()
            limiter.clear()
            if run == 3:
                org.rate_limit = THROTTLED_LIMIT
                api.throttle_every(STORM, okta.rate_limited(THROTTLED_LIMIT, org.window),
                                   pattern=r"^/api/v1/")
            child = annexa(config, "collect", log=workdir / f"collect-{run}.log")
            api.heal()
            calls = Counter(api.calls)
            _, status, resources, blobs, _, failing = last_run(url, SOURCE)
            results[run] = failing
            total = sum(calls.values())
            refused = limiter.refused
            print(f"{n:>6} {db:<10} {run:>3} {child.seconds:>7.1f} {resources:>9} "
                  f"{total:>8} {total / n:>8.4f} {child.peak_rss_mb:>11.0f} {blobs:>9} "
                  f"{refused:>15} {status}", flush=True)
            if run == 1:
                print(f"{'':>8}requests: {split(calls)}")
                verdict = "within" if total / n <= TARGET_REQUESTS_PER_USER else "ABOVE"
                print(f"{'':>8}{verdict} the target of {TARGET_REQUESTS_PER_USER} requests "
                      "per user")
        same = "identical" if results[3] == results[1] else "DIFFERENT"
        print(f"{'':>8}the throttled run's failing results are {same} to the first run's")


def connector_alone(scales: list[int]) -> None:
    """tracemalloc's peak while the connector's stream is consumed and dropped: what the
    connector itself holds, without the pipeline's per-run state."""
    import os
    import tracemalloc

    from collector.demo.emulators.server import ca_file
    from connectors.okta import Settings, collect

    os.environ[okta.TOKEN_ENV] = okta.DEMO_TOKEN
    for n in scales:
        org = scale_org(n)
        api, _, _ = okta.start(org, page_size=200)
        try:
            tracemalloc.start()
            count = sum(1 for _ in collect(Settings(org_url=api.url, ca_bundle=ca_file())))
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            api.stop()
        print(f"{n:>6} users: {count} items, connector peak {peak / 2**20:.1f} MB "
              "(tracemalloc, emulator included)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="users (repeatable); "
                                                              "default 1000 and 10000")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--connector", action="store_true",
                        help="consume collect() in this process, no pipeline: its peak memory")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.connector:
        connector_alone(args.n or [1000, 10000])
        return
    print(f"runs: 1 first, 2 unchanged, 3 throttled ({THROTTLED_LIMIT} calls a second per "
          f"bucket, and one call in {STORM} refused with a 429 besides; over-limit 429s are the "
          "calls the emulator refused past a bucket's limit, which pacing should avoid)")
    print(f"{'users':>6} {'database':<10} {'run':>3} {'wall s':>7} {'resources':>9} "
          f"{'requests':>8} {'req/user':>8} {'peak RSS MB':>11} {'new blobs':>9} "
          f"{'over-limit 429s':>15} status")
    org = okta.Org(id="00obench")
    api, limiter, _ = okta.start(org, page_size=200)
    try:
        with tempfile.TemporaryDirectory(prefix="annexa-bench-okta-") as tmp:
            for n in args.n or [1000, 10000]:
                bench(api, limiter, org, n, args.db, Path(tmp))
    finally:
        api.stop()


if __name__ == "__main__":
    main()
