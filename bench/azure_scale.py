"""`annexa collect` of an `azure` source against the loopback ARM and Resource Graph emulator
at scale: requests per resource (Resource Graph pages of up to 1,000 rows, one request per
ARM child read, and anything else), wall time, peak RSS, and the blobs an unchanged second run
adds.

    python bench/azure_scale.py                    # N=1000 and N=10000, SQLite
    python bench/azure_scale.py --n 10000 --db postgresql
    python bench/azure_scale.py --quick            # N=1000 only

The emulator runs in this process on 127.0.0.1 (real HTTPS, the real azure-identity token
flow, Resource Graph's own quota of 15 queries per 5 seconds) and counts every request by
route; `annexa` runs as a child process, so its peak RSS is its own. N resources are spread
evenly over 5 subscriptions: per 20 resources, 4 storage accounts, 2 Key Vaults, 4 network
security groups, 1 SQL server with its master and 2 user databases, 1 PostgreSQL flexible
server, 4 App Service apps and 1 role assignment.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
import yaml

from bench.aws_scale import machine, run_child
from bench.measure import database
from collector.demo.emulators import azure as emulator
from collector.demo.emulators import azure_sample as sample
from collector.demo.emulators.server import FakeApi
from connectors.azure.kinds import KINDS, SUBSCRIPTION

SOURCE = "azure-bench"
SUBSCRIPTIONS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 6)]
# Per block of 20 resources.
BLOCK = 20


def seed(azure: emulator.Azure, n: int) -> None:
    """n Resource Graph rows over the subscriptions, about one in ten with a gap."""
    per = n // len(SUBSCRIPTIONS)
    for s, sub in enumerate(SUBSCRIPTIONS):
        azure.subscription(sub, f"bench-{s}")
        sample.subscription_settings(azure, sub, standard=sample.CURRENT_PLANS[: 3 + s])
        for b in range(per // BLOCK):
            gap = b % 10 == 0
            name = f"s{s}b{b}"
            for i in range(4):
                sample.storage_account(azure, sub, f"st{name}x{i}",
                                       minimumTlsVersion="TLS1_0" if gap and i == 0 else "TLS1_2")
                sample.security_group(azure, sub, f"nsg-{name}-{i}", [
                    sample.nsg_rule("web", 100, "443", "Internet"),
                    sample.nsg_rule("ssh", 110, "22", "Internet" if gap and i == 0
                                    else "10.0.0.0/8")])
                sample.web_app(azure, sub, f"app-{name}-{i}", https_only=not (gap and i == 0))
            for i in range(2):
                sample.key_vault(azure, sub, f"kv-{name}-{i}", purge_protection=not gap)
            server = sample.sql_server(azure, sub, f"sql-{name}",
                                       auditing="Disabled" if gap else "Enabled")
            for i in range(2):
                sample.sql_database(azure, sub, server, f"db{i}")
            sample.postgres_server(azure, sub, f"pg-{name}",
                                   secure_transport="off" if gap else "on")
            azure.role_assignment(sub, emulator.OWNER if b < 3 else emulator.READER,
                                  sample.guid(f"{name}-principal"))


def child_reads(azure: emulator.Azure) -> Counter[str]:
    """The ARM reads that the seeded tenant needs: one per child of each resource."""
    kinds = {t.lower(): k for k in KINDS for t in k.types}
    reads: Counter[str] = Counter({c.name: len(azure.subscriptions) for c in SUBSCRIPTION.children})
    for rows in azure.tables.values():
        for row in rows.values():
            for child in kinds[row["type"]].children:
                if child.applies(row):
                    reads[child.name] += 1
    return reads


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    status: str
    resources: int
    new_blobs: int
    calls: Counter[str]


def collect(api: FakeApi, config: Path, url: str, log: Path) -> Run:
    api.reset_calls()
    child = run_child([sys.executable, "-m", "collector.cli", "--config", str(config),
                       "collect"], log, env=emulator.credentials_env())
    if child.code != 0:
        raise RuntimeError(f"annexa collect exited {child.code}:\n{child.output[-3000:]}")
    calls = Counter(api.calls)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            run_id, status, resources = conn.execute(sa.text(
                "SELECT id, status, resources FROM runs WHERE source = :s ORDER BY id DESC "
                "LIMIT 1"), {"s": SOURCE}).one()
            blobs = conn.scalar(sa.text("SELECT count(*) FROM blobs WHERE first_run = :r"),
                                {"r": run_id})
    finally:
        engine.dispose()
    return Run(child.seconds, child.peak_rss_mb, status, resources, int(blobs), calls)


HEADER = (f"{'N':>6} {'database':<11} {'run':>3} {'wall s':>7} {'res/s':>6} {'resources':>9} "
          f"{'RG pages':>8} {'child reads':>11} {'other':>5} {'req/res':>7} "
          f"{'peak RSS MB':>11} {'new blobs':>9} status")


def report(n: int, db: str, number: int, run: Run, expected: Counter[str]) -> str:
    pages = run.calls["resourcegraph.query"]
    reads = run.calls["arm.get"]
    others = {k: v for k, v in sorted(run.calls.items())
              if k not in ("resourcegraph.query", "arm.get")}
    per = max(run.resources, 1)
    line = (f"{n:>6} {db:<11} {number:>3} {run.seconds:>7.1f} {run.resources / run.seconds:>6.0f}"
            f" {run.resources:>9} {pages:>8} {reads:>11} {sum(others.values()):>5} "
            f"{(pages + reads) / per:>7.3f} {run.peak_rss_mb:>11.0f} {run.new_blobs:>9} "
            f"{run.status}")
    needed = ", ".join(f"{k} {v}" for k, v in expected.most_common())
    other = ", ".join(f"{k} {v}" for k, v in others.items())
    return (f"{line}\n{'':>8}per resource: {pages / per:.4f} Resource Graph pages + "
            f"{reads / per:.4f} child reads ({reads} made, {sum(expected.values())} needed: "
            f"{needed}); other requests: {other}")


def bench(n: int, dbs: list[str], workdir: Path) -> None:
    api, azure = emulator.start(page_size=1000)
    try:
        seed(azure, n)
        rows = sum(len(t) for t in azure.tables.values())
        expected = child_reads(azure)
        print(f"\nN={n}: {rows} Resource Graph rows over {len(SUBSCRIPTIONS)} subscriptions "
              f"(+{len(SUBSCRIPTIONS)} subscriptions as resources); floor = "
              f"{sum((rows_t + 999) // 1000 for rows_t in map(len, azure.tables.values()))} "
              f"pages + {sum(expected.values())} child reads")
        print(HEADER)
        for db in dbs:
            with database(db, workdir) as url:
                source = {**emulator.source(api, name=SOURCE), "schedule": "1h"}
                config = workdir / f"annexa-{db}.yaml"
                config.write_text(yaml.safe_dump({
                    "database": url, "signing_key": str(workdir / "signing.key"),
                    "metrics": {"host": "127.0.0.1", "port": 0}, "sources": [source]}))
                upgrade = run_child([sys.executable, "-m", "collector.cli", "--config",
                                     str(config), "db", "upgrade"], workdir / "upgrade.log")
                if upgrade.code != 0:
                    raise RuntimeError(upgrade.output[-3000:])
                for number in (1, 2):
                    run = collect(api, config, url, workdir / f"collect-{number}.log")
                    print(report(n, db, number, run, expected), flush=True)
    finally:
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append",
                        help="resources (repeatable); default 1000 and 10000")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"),
                        help="database (repeatable); default sqlite")
    parser.add_argument("--quick", action="store_true", help="N=1000 only")
    args = parser.parse_args()
    ns = args.n or ([1000] if args.quick else [1000, 10000])
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="annexa-bench-azure-") as tmp:
        for n in ns:
            bench(n, args.db or ["sqlite"], Path(tmp))


if __name__ == "__main__":
    main()
