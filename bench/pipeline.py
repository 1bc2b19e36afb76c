"""The pipeline alone, without API time: synthetic resources fed straight into
normalise -> redact -> hash -> store -> check -> seal. Prints resources per second and peak RSS
for each size on SQLite and PostgreSQL.

    python bench/pipeline.py                       # 10k, 100k and 1M on both databases
    python bench/pipeline.py --sizes 10000 --db sqlite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import database, database_bytes, run_child
from collector.config import PROCESS_WRITER_FROM


def child(url: str, n: int, writer: str, workdir: Path) -> None:
    from bench.synthetic import resources
    from checks.registry import load_all
    from collector import migrate
    from collector.config import SourceConfig
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.pipeline import collect_source

    migrate.upgrade(engine_for(url, check_schema=False))
    load_all()
    engine = engine_for(url)
    signer = load_or_create_signer(workdir / "bench.key")
    source = SourceConfig(name="synthetic", kind="aws", regions=["us-east-1"])
    started = time.monotonic()
    out = collect_source(engine, source, signer, items=resources(n), writer=writer)
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": seconds, "resources": out.stats.resources,
                      "results": out.stats.results, "status": out.status,
                      "new_blobs": out.stats.new_blobs, "bytes": out.stats.new_blob_bytes,
                      "writer_peak_rss_kb": out.extra.get("writer_peak_rss_kb", 0),
                      "with_writer_kb": out.extra.get("collector_peak_rss_kb_with_writer", 0)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--writer", choices=("auto", "process", "inline"), default="auto",
                        help="where evidence is written: a writer process, the collecting "
                             "process, or (auto) as `writer: auto` would for a source of that "
                             "size: a writer process from PROCESS_WRITER_FROM resources")
    parser.add_argument("--child", nargs=3, metavar=("URL", "N", "WRITER"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp:
        workdir = Path(tmp)
        if args.child:
            child(args.child[0], int(args.child[1]), args.child[2], workdir)
            return
        print(f"writer: {args.writer}; peak RSS is the two processes' joint peak: the collecting "
              "process's peak while the writer lived plus the writer's, or the collecting "
              "process's later peak (the seal) if higher")
        print(f"{'db':<11} {'resources':>10} {'results':>10} {'writer':>8} {'seconds':>8} "
              f"{'res/s':>8} {'peak RSS':>9} {'db size':>9}")
        for kind in args.db:
            for n in args.sizes:
                writer = args.writer
                if writer == "auto":
                    writer = "process" if n >= PROCESS_WRITER_FROM else "inline"
                with database(kind, workdir) as url:
                    run = run_child([__file__, "--child", url, str(n), writer])
                    o = run.output
                    assert o["status"] == "complete", o
                    size = database_bytes(url)
                rss = max(run.peak_rss_mb,
                          (o["with_writer_kb"] + o["writer_peak_rss_kb"]) / 1024)
                print(f"{kind:<11} {o['resources']:>10} {o['results']:>10} {writer:>8} "
                      f"{o['seconds']:>8.1f} "
                      f"{o['resources'] / o['seconds']:>8.0f} {rss:>7.0f}MB "
                      f"{size / 2**20:>7.0f}MB", flush=True)


if __name__ == "__main__":
    main()
