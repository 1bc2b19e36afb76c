"""`annexa collect` of a GitHub organisation at scale, against the GitHub emulator: requests per
repository (split by call), wall time, peak RSS, and the blobs that an unchanged second run
adds, on SQLite.

    python bench/github_scale.py                    # 500 and 2,000 repositories
    python bench/github_scale.py --n 5000           # one scale
    python bench/github_scale.py --db postgresql    # PostgreSQL instead

The emulator (collector/demo/emulators/github.py, REST and GraphQL on one loopback HTTPS
server) runs in this process and counts every request; its pages are as large as GitHub's
(100). `annexa` runs as a child process with a fine-grained token in GITHUB_TOKEN, so its peak
RSS is its own (from wait4)."""

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
from collector.demo.emulators import github
from collector.demo.emulators.github_seed import scale_org

SOURCE = "github-bench"
TARGET_REQUESTS_PER_REPOSITORY = 0.1


def write_config(workdir: Path, db_url: str, api: github.FakeApi, org: github.Org) -> Path:
    cfg = {"database": db_url, "signing_key": str(workdir / "signing.key"),
           "metrics": {"host": "127.0.0.1", "port": 0},
           "sources": [{**github.source_for(api, org, name=SOURCE), "schedule": "1h"}]}
    path = workdir / "annexa-github.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(config: Path, token: str, *args: str, log: Path):  # type: ignore[no-untyped-def]
    child = run_child([sys.executable, "-m", "collector.cli", "--config", str(config), *args],
                      log, env={"GITHUB_TOKEN": token})
    if child.code != 0:
        raise RuntimeError(f"annexa {' '.join(args)} exited {child.code}:\n{child.output[-3000:]}")
    return child


def bench(api: github.FakeApi, tokens: github.Tokens, org: github.Org, n: int, db: str,
          workdir: Path) -> None:
    seeded = scale_org(n)
    for name in vars(seeded):
        setattr(org, name, getattr(seeded, name))
    token = github.personal_token(tokens, org)
    with database(db, workdir) as url:
        config = write_config(workdir, url, api, org)
        annexa(config, token, "db", "upgrade", log=workdir / "upgrade.log")
        for run in (1, 2):
            api.reset_calls()
            child = annexa(config, token, "collect", log=workdir / f"collect-{run}.log")
            calls = Counter(api.calls)
            _, status, resources, blobs, _, _ = last_run(url, SOURCE)
            total = sum(calls.values())
            print(f"{n:>6} {db:<10} {run:>3} {child.seconds:>7.1f} {resources:>9} "
                  f"{total:>8} {total / n:>8.4f} {child.peak_rss_mb:>11.0f} {blobs:>9} "
                  f"{status}", flush=True)
            print(f"{'':>8}requests: " + ", ".join(f"{name} {count}"
                                                   for name, count in calls.most_common()))
    verdict = "within" if total / n <= TARGET_REQUESTS_PER_REPOSITORY else "ABOVE"
    print(f"{'':>8}{verdict} the target of {TARGET_REQUESTS_PER_REPOSITORY} requests per "
          "repository")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="repositories (repeatable); "
                                                              "default 500 and 2000")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{'repos':>6} {'database':<10} {'run':>3} {'wall s':>7} {'resources':>9} "
          f"{'requests':>8} {'req/repo':>8} {'peak RSS MB':>11} {'new blobs':>9} status")
    org = github.Org(login="acme")
    api, tokens, _ = github.start(org, page_size=github.MAX_PER_PAGE)
    try:
        with tempfile.TemporaryDirectory(prefix="annexa-bench-github-") as tmp:
            for n in args.n or [500, 2000]:
                bench(api, tokens, org, n, args.db, Path(tmp))
    finally:
        api.stop()


if __name__ == "__main__":
    main()
