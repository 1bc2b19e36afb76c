"""`annexa collect` of a Google Cloud organization at scale, against the loopback fake of Cloud
Asset Inventory: wall time, requests the fake received (total and per asset), peak RSS, the
blobs each run adds, and the planted gaps found, for a first run and an unchanged second run.

    python bench/gcp_scale.py                        # 1,000 and 20,000 assets over 50 projects
    python bench/gcp_scale.py --n 5000 --db postgresql
    python bench/gcp_scale.py --quick                # 1,000 assets, SQLite
    python bench/gcp_scale.py --n 20000 --writer process

The fake runs in this process on 127.0.0.1 with pages as large as ListAssets' (1000 assets);
`annexa` runs as a child process started from a small launcher, so its peak RSS is its own.
The connector goes through the real google-cloud-asset client, whose service-account
credentials sign their own JWTs, which the fake verifies.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
import yaml

from bench.aws_scale import last_run, machine, run_child
from bench.measure import database
from bench.workspace_scale import annexa
from collector.demo.emulators import gcp as fake
from collector.demo.emulators import gcp_sample, google_login
from collector.demo.emulators.server import FakeApi, ca_file

SOURCE = "gcp-bench"
PROJECTS = 50


def failing(db_url: str, run_id: int) -> dict[str, int]:
    """Failing subjects per check in `run_id` (full keys: short ids repeat across projects)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {check: int(count) for check, count in conn.execute(sa.text(
                "SELECT check_id, count(*) FROM check_results WHERE source = :s "
                "AND status = 'fail' AND valid_from_run <= :r "
                "AND (valid_to_run IS NULL OR valid_to_run > :r) GROUP BY check_id"),
                {"s": SOURCE, "r": run_id})}
    finally:
        engine.dispose()


# The connector alone, in a child of its own: what it holds, without the store's.
_CONNECTOR_ONLY = """
import json, sys
from connectors.gcp import Settings, collect
print(sum(1 for _ in collect(Settings.model_validate(json.loads(sys.argv[1])))))
"""


def connector_alone(options: dict[str, object], workdir: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB, items) of the connector's stream consumed and dropped."""
    child = run_child([sys.executable, "-c", _CONNECTOR_ONLY, json.dumps(options)],
                      workdir / "connector.log")
    if child.code != 0:
        raise RuntimeError(f"the connector alone exited {child.code}:\n{child.output[-3000:]}")
    return child.seconds, child.peak_rss_mb, int(child.output.split()[-1])


def write_config(workdir: Path, db_url: str, options: dict[str, object],
                 writer: str) -> Path:
    cfg = {"database": db_url, "signing_key": str(workdir / "signing.key"), "writer": writer,
           "metrics": {"host": "127.0.0.1", "port": 0},
           "sources": [{"name": SOURCE, "kind": "gcp", "schedule": "1h", **options}]}
    path = workdir / "annexa-gcp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


HEADER = (f"{'assets':>6} {'database':<11} {'run':>3} {'wall s':>7} {'resources':>9} "
          f"{'requests':>8} {'req/asset':>9} {'peak RSS MB':>11} {'new blobs':>9} status")


def bench_scale(cloud: fake.Cloud, n: int, dbs: list[str], workdir: Path,
                writer: str) -> None:
    cloud.reset()
    started = time.monotonic()
    org, expected = gcp_sample.scale_org(n, PROJECTS)
    cloud.add(org)
    assets = sum(1 for a in cloud.assets if a.resource is not None
                 and "Organization" not in a.asset_type and "Folder" not in a.asset_type)
    key = cloud.key_file(workdir / f"sa-{n}.json")
    options = {"organization": gcp_sample.ORG, "credentials_file": str(key),
               "api_endpoint": cloud.api.url, "ca_bundle": str(ca_file())}
    print(f"\n{assets} assets over {PROJECTS} projects: seeded in "
          f"{time.monotonic() - started:.1f}s; expected failures {expected}", flush=True)
    seconds, rss, items = connector_alone(options, workdir)
    print(f"the connector alone: {items} items in {seconds:.1f}s, peak RSS {rss:.0f} MB")
    print(HEADER)
    for db in dbs:
        with database(db, workdir) as url:
            config = write_config(workdir, url, options, writer)
            annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
            for run in (1, 2):
                cloud.api.reset_calls()
                seconds, rss = annexa(config, "collect", log=workdir / f"collect-{run}.log")
                calls = dict(cloud.api.calls)
                run_id, status, resources, blobs, _, _ = last_run(url, SOURCE)
                total = sum(calls.values())
                print(f"{assets:>6} {db:<11} {run:>3} {seconds:>7.1f} {resources:>9} "
                      f"{total:>8} {total / assets:>9.5f} {rss:>11.0f} {blobs:>9} {status}",
                      flush=True)
                print(f"{'':>8}requests: " + ", ".join(
                    f"{name} {count}" for name, count in sorted(calls.items())))
                counts = failing(url, run_id)
                found = {check: counts.get(check, 0) for check in expected}
                if found != expected:
                    raise SystemExit(f"planted failures missed or invented: {found} != "
                                     f"{expected}")
                print(f"{'':>8}planted failures found: all {sum(expected.values())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append",
                        help="assets (repeatable); default 1000 and 20000")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"),
                        help="database (repeatable); default sqlite")
    parser.add_argument("--quick", action="store_true", help="1,000 assets on SQLite")
    parser.add_argument("--writer", choices=("auto", "inline", "process"), default="auto",
                        help="the config's `writer` (auto: inline below 20,000 resources "
                             "in the source's last run)")
    args = parser.parse_args()
    ns = args.n or ([1000] if args.quick else [1000, 20000])
    dbs = args.db or ["sqlite"]
    print(f"machine: {machine()}")
    api = FakeApi("gcp", page_size=fake.MAX_PAGE).start()
    try:
        cloud = fake.install(api, google_login.Accounts())
        with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp:
            for n in ns:
                bench_scale(cloud, n, dbs, Path(tmp), args.writer)
    finally:
        api.stop()


if __name__ == "__main__":
    main()
