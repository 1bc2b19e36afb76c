"""`annexa collect` against an emulated AWS account at scale: wall time, resources per second,
HTTP requests received by the emulator (total, per service, per resource), peak RSS, and the
blobs and bytes each run adds, for a first run and an unchanged second run, on SQLite and
PostgreSQL, with S3 read through AWS Config and directly.

    python bench/aws_scale.py                      # N=1000, both databases, both S3 paths
    python bench/aws_scale.py --n 1000 --n 5000    # several scales: is memory flat?
    python bench/aws_scale.py --quick              # N=100, SQLite only
    python bench/aws_scale.py --profile /tmp/prof  # also write a pyinstrument report per run

The emulator (moto) runs in this process on 127.0.0.1 and counts every request; `annexa` runs
as a child process, so its peak RSS is its own (from wait4). PostgreSQL runs get a throwaway
database on postgresql+psycopg://postgres@127.0.0.1:5432 (ANNEXA_BENCH_PG names another).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa
import yaml

from bench import estate
from bench.emulator import CHILD_ENV, Emulator
from bench.measure import database

ROOT = Path(__file__).resolve().parent.parent
S3_PATHS = ("config", "direct")  # AWS Config recording in both regions, or stopped
SOURCE = "aws-bench"


@dataclass
class Child:
    code: int
    seconds: float
    peak_rss_mb: float
    output: str


# Runs the command and writes its peak RSS (KiB) to argv[1]. Linux carries a process's RSS
# high-water mark across fork and exec, so a child forked straight from this process (which
# holds the emulator's whole state) would report this process's size, not its own; forked from
# this small launcher it reports its own.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(args: list[str], log: Path, env: dict[str, str] | None = None) -> Child:
    """Run a command with its output in `log`; its own peak RSS comes from wait4."""
    rss = log.with_suffix(".rss")
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(rss), *args], stdout=out,
                              stderr=subprocess.STDOUT, cwd=ROOT, check=False,
                              env={**os.environ, **CHILD_ENV, **(env or {})})
        seconds = time.monotonic() - started
    peak_kib = int(rss.read_text()) if rss.exists() else 0
    return Child(proc.returncode, seconds, peak_kib / 1024, log.read_text())


def write_config(workdir: Path, db_url: str, endpoint: str) -> Path:
    cfg = {
        "database": db_url,
        "signing_key": str(workdir / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0},
        "sources": [{"name": SOURCE, "kind": "aws", "schedule": "1h",
                     "regions": list(estate.REGIONS), "endpoint_url": endpoint}],
    }
    path = workdir / f"annexa-{abs(hash(db_url)):x}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def annexa(config: Path, *args: str, log: Path, profile: Path | None = None) -> Child:
    command = [sys.executable, "-m", "collector.cli", "--config", str(config), *args]
    if profile is not None:
        command[1:3] = ["-m", "pyinstrument", "-r", "text", "-o", str(profile),
                        "-m", "collector.cli"]
    child = run_child(command, log)
    if child.code != 0:
        raise RuntimeError(f"annexa {' '.join(args)} exited {child.code}:\n{child.output[-3000:]}")
    return child


@dataclass
class RunFigures:
    seconds: float
    peak_rss_mb: float
    status: str
    resources: int
    requests: Counter[str]
    new_blobs: int
    new_bytes: int
    failing: dict[str, set[str]] = field(default_factory=dict)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def last_run(db_url: str, source: str = SOURCE
             ) -> tuple[int, str, int, int, int, dict[str, set[str]]]:
    """(run id, status, resources, new blobs, new bytes, failing short ids by check id) of
    `source`'s latest run."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            run_id, status, resources = conn.execute(sa.text(
                "SELECT id, status, resources FROM runs WHERE source = :s "
                "ORDER BY id DESC LIMIT 1"), {"s": source}).one()
            blobs, size = conn.execute(sa.text(
                "SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE first_run = :r"),
                {"r": run_id}).one()
            failing: dict[str, set[str]] = {}
            for check_id, subject in conn.execute(sa.text(
                    "SELECT check_id, subject FROM check_results WHERE source = :s "
                    "AND status = 'fail' AND valid_from_run <= :r "
                    "AND (valid_to_run IS NULL OR valid_to_run > :r)"),
                    {"s": source, "r": run_id}):
                failing.setdefault(check_id, set()).add(estate.short_id(subject))
    finally:
        engine.dispose()
    return run_id, status, resources, int(blobs), int(size), failing


def collect(emu: Emulator, config: Path, db_url: str, log: Path,
            profile: Path | None = None) -> RunFigures:
    emu.take_counts()
    child = annexa(config, "collect", log=log, profile=profile)
    requests = emu.take_counts()
    _, status, resources, blobs, size, failing = last_run(db_url)
    return RunFigures(child.seconds, child.peak_rss_mb, status, resources, requests, blobs,
                      size, failing)


def coverage(planted: estate.Planted, failing: dict[str, set[str]]) -> tuple[int, int]:
    """(planted resources found, planted resources) over every gap."""
    found = sum(len(ids & failing.get(gap.annexa_check, set()))
                for gap in estate.GAPS for ids in [planted.get(gap.name, set())])
    return found, sum(len(ids) for ids in planted.values())


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import moto

    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}; moto {moto.__version__}")


HEADER = (f"{'N':>6} {'S3 via':<7} {'database':<11} {'run':>3} {'wall s':>7} {'res/s':>7} "
          f"{'resources':>9} {'requests':>8} {'req/res':>7} {'peak RSS MB':>11} "
          f"{'new blobs':>9} {'new bytes':>10} status")


def row(n: int, s3: str, db: str, run: int, f: RunFigures) -> str:
    return (f"{n:>6} {s3:<7} {db:<11} {run:>3} {f.seconds:>7.1f} "
            f"{f.resources / f.seconds:>7.0f} {f.resources:>9} {f.total_requests:>8} "
            f"{f.total_requests / max(f.resources, 1):>7.2f} {f.peak_rss_mb:>11.0f} "
            f"{f.new_blobs:>9} {f.new_bytes:>10} {f.status}")


def by_service(requests: Counter[str], resources: int) -> str:
    return ", ".join(f"{svc} {count} ({count / max(resources, 1):.2f}/res)"
                     for svc, count in requests.most_common())


def bench_scale(emu: Emulator, n: int, dbs: list[str], paths: list[str], workdir: Path,
                profile: Path | None) -> None:
    emu.reset()
    started = time.monotonic()
    planted = estate.seed(emu.url, n)
    seeding = emu.take_counts()
    print(f"\nN={n}: seeded {estate.seeded_resources(n)} resources with "
          f"{sum(len(v) for v in planted.values())} planted gaps in "
          f"{time.monotonic() - started:.0f}s ({sum(seeding.values())} requests)", flush=True)
    print(HEADER)
    for s3 in paths:
        estate.set_config_recording(emu.url, s3 == "config")
        emu.take_counts()
        for db in dbs:
            with database(db, workdir) as url:
                config = write_config(workdir, url, emu.url)
                annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
                first: RunFigures | None = None
                for run in (1, 2):
                    prof = (profile / f"n{n}-{s3}-{db}-run{run}.txt") if profile else None
                    figures = collect(emu, config, url, workdir / f"collect-{run}.log", prof)
                    print(row(n, s3, db, run, figures), flush=True)
                    print(f"{'':>8}requests by service: "
                          f"{by_service(figures.requests, figures.resources)}")
                    if first is None:
                        first = figures
                        found, total = coverage(planted, figures.failing)
                        print(f"{'':>8}planted gaps found: {found} of {total}")
                    else:
                        share = 100 * figures.new_bytes / max(first.new_bytes, 1)
                        print(f"{'':>8}second run: {figures.new_blobs} new blobs, "
                              f"{share:.2f}% of the first run's bytes", flush=True)
    estate.set_config_recording(emu.url, True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append",
                        help="scale (repeatable); default 1000")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"),
                        help="database (repeatable); default both")
    parser.add_argument("--s3", action="append", choices=S3_PATHS,
                        help="how S3 buckets are read (repeatable); default both")
    parser.add_argument("--quick", action="store_true", help="N=100 on SQLite only")
    parser.add_argument("--profile", type=Path,
                        help="write a pyinstrument report of each collection in this directory")
    args = parser.parse_args()
    ns = args.n or ([100] if args.quick else [1000])
    dbs = args.db or (["sqlite"] if args.quick else ["sqlite", "postgresql"])
    paths = args.s3 or list(S3_PATHS)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp, Emulator() as emu:
        print(f"emulator: {emu.url}")
        for n in ns:
            bench_scale(emu, n, dbs, paths, Path(tmp), args.profile)


if __name__ == "__main__":
    main()
