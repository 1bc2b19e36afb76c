"""`annexa prune` on a year of history: N synthetic resources collected in 365 runs through the
real pipeline (one run stands for one day; each resource changes every 100 runs, staggered, so
about 1% change a day), then pruned with a retention that keeps the last 90 "days". Prints the
stored body bytes before and after, the bodies dropped, and the time to plan, seal and drop.

Runs follow each other in seconds, not days: the prune is asked "as of" the instant at which
the 275th run is 90 days old, which is what the cutoff rule sees in a real year.

    python bench/prune.py                 # 2,000 resources, SQLite
    python bench/prune.py --n 5000 --db postgresql
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import database, run_child

DAYS, KEPT = 365, 90


def child(url: str, n: int, workdir: Path) -> None:
    import sqlalchemy as sa

    from checks.registry import load_all
    from collector import migrate
    from collector.chain import RUNS
    from collector.config import Config
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.model import Scope
    from collector.pipeline import collect_source
    from collector.retention import prune

    migrate.upgrade(engine_for(url, check_schema=False))
    load_all()
    engine = engine_for(url)
    cfg = Config.model_validate({
        "database": url, "signing_key": str(workdir / "bench.key"),
        "sources": [{"name": "history", "kind": "aws", "regions": ["us-east-1"],
                     "retention": f"{KEPT}d"}]})
    signer = load_or_create_signer(cfg.signing_key)
    scope = Scope("aws", "111111111111", "aws:account:111111111111")
    started = time.monotonic()
    for day in range(DAYS):
        items = [scope, *(scope.resource(
            "aws.s3.bucket", f"arn:aws:s3:::bucket-{i:06d}",
            {"Name": f"bucket-{i:06d}", "revision": (day + i) // 100,
             "Tags": [{"Key": "team", "Value": f"team-{i % 40}"}],
             "Policy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                       "Action": "s3:GetObject",
                                       "Resource": f"arn:aws:s3:::bucket-{i:06d}/*"}]}})
            for i in range(n))]
        out = collect_source(engine, cfg.sources[0], signer, items=iter(items), writer="inline")
        assert out.status == "complete", out.message
    history_seconds = time.monotonic() - started

    def body_bytes() -> tuple[int, int]:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT COUNT(body), COALESCE(SUM(LENGTH(body)), 0) "
                                       "FROM blobs")).one()
        return int(row[0]), int(row[1])

    before = body_bytes()
    with engine.connect() as conn:
        finished = list(conn.execute(sa.select(RUNS.c.finished_at).where(
            RUNS.c.source == "history").order_by(RUNS.c.id)).scalars())
    at = finished[DAYS - KEPT - 1] + timedelta(days=KEPT)
    started = time.monotonic()
    result = prune(engine, cfg, signer, at=at)
    prune_seconds = time.monotonic() - started
    after = body_bytes()
    verified = time.monotonic()
    from collector.chain import verify

    report = verify(engine, signer.public)
    print(json.dumps({"history_seconds": history_seconds, "prune_seconds": prune_seconds,
                      "verify_seconds": time.monotonic() - verified, "intact": report.ok,
                      "bodies_before": before[0], "bytes_before": before[1],
                      "bodies_after": after[0], "bytes_after": after[1],
                      "dropped": result.dropped}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", nargs=3, metavar=("URL", "N", "WORKDIR"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp, \
            database(args.db, Path(tmp)) as url:
        run = run_child([__file__, "--child", url, str(args.n), tmp])
        o = run.output
        print(f"{args.db}: {args.n} resources x {DAYS} runs in {o['history_seconds']:.0f} s; "
              f"retention {KEPT}d")
        print(f"  bodies {o['bodies_before']} -> {o['bodies_after']} ({o['dropped']} dropped); "
              f"body bytes {o['bytes_before'] / 2**20:.1f} MiB -> "
              f"{o['bytes_after'] / 2**20:.1f} MiB")
        print(f"  prune {o['prune_seconds']:.1f} s; verify after it {o['verify_seconds']:.1f} s, "
              f"{'intact' if o['intact'] else 'BROKEN'}; peak RSS {run.peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
