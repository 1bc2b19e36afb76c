"""`snapshot --at` over a long history: a synthetic year in PostgreSQL (365 daily runs, about
1% of resources changing a day, about 1M resource versions in all), then the time to answer
`annexa snapshot --at T` for one control and for all 93 at random past instants.

The history is written straight into the tables (COPY), not collected run by run: a year of
daily collections of 200k resources would take hours. Its rows have the shapes and validity
intervals a real history has; the runs carry placeholder seals, so `annexa verify` means
nothing on it.

    python bench/history.py                   # about 1M versions
    python bench/history.py --resources 20000 # a smaller year
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import database, database_bytes
from bench.synthetic import MAKERS, REGIONS

SOURCE = "aws-history"
START = datetime(2025, 11, 1, 6, tzinfo=UTC)


def build(url: str, resources: int, days: int, churn: float) -> dict[str, int]:
    from checks.registry import load_all, resource_checks
    from collector import migrate
    from collector.canonical import canonical, sha256_hex
    from collector.db import engine_for
    from collector.ledger import result_digest
    from collector.store import compress

    migrate.upgrade(engine_for(url, check_schema=False))
    load_all()
    engine = engine_for(url)
    checks = {m: resource_checks(m(0, "us-east-1", 0).kind) for m in MAKERS}
    period = int(1 / churn)
    counts = {"versions": 0, "results": 0, "blobs": 0}
    status_of: dict[tuple[str, str], str] = {}
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cur = raw.cursor()
        for day in range(1, days + 1):
            finished = START + timedelta(days=day - 1, minutes=5)
            cur.execute(
                "INSERT INTO runs (id, source, kind, started_at, finished_at, status, resources, "
                "results, errors, seq, merkle_root, prev_hash, chain_hash, signature, key_id) "
                "VALUES (%s,%s,'aws',%s,%s,'complete',%s,0,0,%s,%s,%s,%s,%s,%s)",
                (day, SOURCE, (finished - timedelta(minutes=5)).replace(tzinfo=None),
                 finished.replace(tzinfo=None), resources, day, "0" * 64, "0" * 64, "0" * 64,
                 "0" * 128, "0" * 64))
            changed = range(resources) if day == 1 else [
                i for i in range(resources) if (i + day) % period == 0]
            blobs, versions, results, keys = [], [], [], []
            for i in changed:
                res = MAKERS[i % len(MAKERS)](i, REGIONS[i % 2], day)
                body = canonical(res.data)
                digest = sha256_hex(body)
                blobs.append((digest, len(body), compress(body), day))
                versions.append((SOURCE, res.kind, res.key, res.scope, res.region, digest, day))
                keys.append(res.key)
                for chk in checks[MAKERS[i % len(MAKERS)]]:
                    verdict = chk.evaluate(res.data)
                    was = status_of.get((chk.id, res.key))
                    if was is not None:
                        tally[chk.id][was] -= 1
                    tally[chk.id][verdict.status] += 1
                    status_of[(chk.id, res.key)] = verdict.status
                    evidence = [digest]
                    results.append((SOURCE, chk.id, res.key, res.kind, res.region,
                                    verdict.status, verdict.reason, json.dumps(evidence),
                                    result_digest(chk.id, res.key, verdict.status,
                                                  verdict.reason, evidence), day))
            if day > 1:
                cur.execute("UPDATE resource_versions SET valid_to_run = %s WHERE source = %s "
                            "AND valid_to_run IS NULL AND key = ANY(%s)", (day, SOURCE, keys))
                cur.execute("UPDATE check_results SET valid_to_run = %s WHERE source = %s "
                            "AND valid_to_run IS NULL AND subject = ANY(%s)", (day, SOURCE, keys))
            with cur.copy("COPY blobs (digest, size, body, first_run) FROM STDIN") as copy:
                for row in blobs:
                    copy.write_row(row)
            with cur.copy("COPY resource_versions (source, kind, key, scope, region, digest, "
                          "valid_from_run) FROM STDIN") as copy:
                for row in versions:
                    copy.write_row(row)
            with cur.copy("COPY check_results (source, check_id, subject, kind, region, status, "
                          "reason, evidence, result_digest, valid_from_run) FROM STDIN") as copy:
                for row in results:
                    copy.write_row(row)
            # What the seal writes: the run's results counted per check and status.
            summary = {c: {st: n for st, n in sorted(t.items()) if n} for c, t in tally.items()}
            cur.execute("UPDATE runs SET result_counts = %s WHERE id = %s",
                        (json.dumps(summary, sort_keys=True), day))
            if day == 1:
                cur.execute("ANALYZE")  # the daily updates find open rows by key, not by scan
            raw.commit()
            counts["versions"] += len(versions)
            counts["results"] += len(results)
            counts["blobs"] += len(blobs)
        cur.execute("SELECT setval(pg_get_serial_sequence('runs', 'id'), %s)", (days,))
        cur.execute("ANALYZE")
        raw.commit()
    engine.dispose()
    return counts


def _has_history(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        built = sa.inspect(conn).has_table("runs") and bool(
            conn.scalar(sa.text("SELECT count(*) FROM runs")))
    engine.dispose()
    return built


def time_snapshots(url: str, days: int, samples: int, seed: int) -> dict[str, list[float]]:
    from checks.registry import load_all
    from collector.db import engine_for
    from collector.snapshot import snapshot

    load_all()
    engine = engine_for(url)
    rng = random.Random(seed)
    cases = (("one control (A.8.24)", ["A.8.24"], {}),
             ("all 93 controls", None, {}),
             ("one control, --failing-only", ["A.8.24"], {"failing_only": True}),
             ("all 93, --failing-only", None, {"failing_only": True}),
             ("one control, --summary", ["A.8.24"], {"summary": True}),
             ("all 93, --summary", None, {"summary": True}))
    out: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    with engine.connect() as conn:
        snapshot(conn, START + timedelta(days=days // 2))  # warm the caches once
        for _ in range(samples):
            at = START + timedelta(seconds=rng.uniform(0, days * 86400))
            for label, controls, options in cases:
                started = time.perf_counter()
                snapshot(conn, at, controls, **options)
                out[label].append(time.perf_counter() - started)
    engine.dispose()
    return out


def arguments(doc: str | None) -> argparse.Namespace:
    """The options of a benchmark over this history (bench/web_render.py has the same)."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=215_000,
                        help="resources alive at any time (215k gives about 1M versions)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", help="a PostgreSQL database to keep the history in: built "
                        "there if it holds none yet, reused as it is otherwise")
    return parser.parse_args()


def history(stack: contextlib.ExitStack, args: argparse.Namespace) -> str:
    """The URL of a database holding the history: `--url`'s (built there if empty), or a
    throwaway one built now and dropped when `stack` closes."""
    url = args.url or stack.enter_context(
        database("postgresql", Path(stack.enter_context(tempfile.TemporaryDirectory()))))
    if not args.url or not _has_history(url):
        started = time.monotonic()
        counts = build(url, args.resources, args.days, args.churn)
        print(f"history: {args.days} runs, {counts['versions']:,} resource versions, "
              f"{counts['results']:,} check results, {counts['blobs']:,} blobs; built in "
              f"{time.monotonic() - started:.0f}s", flush=True)
    return url


def main() -> None:
    args = arguments(__doc__)
    with contextlib.ExitStack() as stack:
        url = history(stack, args)
        print(f"database size {database_bytes(url) / 2**20:.0f} MB", flush=True)
        timings = time_snapshots(url, args.days, args.samples, args.seed)
        for label, values in timings.items():
            print(f"snapshot --at, {label:<28}: median {statistics.median(values):.3f}s, "
                  f"max {max(values):.3f}s over {len(values)} random instants")


if __name__ == "__main__":
    main()
