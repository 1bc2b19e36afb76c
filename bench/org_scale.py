"""A whole AWS Organization collected by the cluster: an emulated organisation of 50 member
accounts of 200 resources each, every AWS answer delayed by 50 ms as a distant endpoint's,
collected by `annexa collect` through Redis with one `annexa worker --concurrency W` for
W = 1, 2, 4, 8: wall time, speed-up over W=1, HTTP requests per resource, peak RSS of each
worker process, and how long seals waited for the chain lock.

    python bench/org_scale.py                        # 50 accounts x 200 resources, W=1,2,4,8
    python bench/org_scale.py --accounts 10 --workers 1 --workers 4   # a quick look

The emulator (moto, with the latency) runs in this process and counts every request; the
workers and `annexa collect` are child processes. Each W gets a throwaway PostgreSQL database
(ANNEXA_BENCH_PG names the server) and a Redis database of its own (ANNEXA_BENCH_REDIS, default
redis://127.0.0.1:6379/14, emptied before and after).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import redis
import sqlalchemy as sa
import yaml

from bench.emulator import CHILD_ENV, CREDENTIALS, Emulator
from bench.measure import database

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "aws-org"
ROLE = "AnnexaReadOnly"
REGION = "us-east-1"
_WAITED = re.compile(r"chain lock waited ([0-9.]+) ms")


def _client(url: str, service: str, account: str | None = None) -> Any:
    if account is None:
        return boto3.client(service, region_name=REGION, endpoint_url=url, **CREDENTIALS)
    creds = _client(url, "sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                                            RoleSessionName="seed")["Credentials"]
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"],
                        aws_session_token=creds["SessionToken"])


def _seed_account(url: str, account: str, resources: int) -> None:
    """`resources` resources: 60% IAM users, 20% security groups, 20% EBS volumes."""
    iam, ec2 = _client(url, "iam", account), _client(url, "ec2", account)
    users, groups = resources * 3 // 5, resources // 5
    for i in range(users):
        iam.create_user(UserName=f"user-{i:04d}")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for i in range(groups):
        ec2.create_security_group(GroupName=f"sg-{i:04d}", Description="bench", VpcId=vpc)
    for _ in range(resources - users - groups):
        ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, Encrypted=True)


def seed(url: str, accounts: int, resources: int) -> list[str]:
    org = _client(url, "organizations")
    org.create_organization(FeatureSet="ALL")
    members = [org.create_account(Email=f"m{i}@example.com", AccountName=f"m{i}")
               ["CreateAccountStatus"]["AccountId"] for i in range(accounts)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda a: _seed_account(url, a, resources), members))
    return members


def write_config(workdir: Path, db_url: str, endpoint: str, broker: str) -> Path:
    cfg = {
        "database": db_url, "signing_key": str(workdir / "signing.key"),
        "metrics": {"host": "127.0.0.1", "port": 0},
        "queue": {"broker": broker, "wait": "2h"},
        "sources": [{"name": SOURCE, "kind": "aws", "schedule": "6h", "regions": [REGION],
                     "endpoint_url": endpoint, "organization": {"role_name": ROLE}}],
    }
    path = workdir / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int, reaped: bool) -> float:
    """The process's CPU time (user + system), or with `reaped` that of its ended children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    first = 13 if reaped else 11  # cutime, cstime / utime, stime (fields 16-17 / 14-15)
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def _pool(pid: int) -> list[int]:
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()]


def run_once(emu: Emulator, workdir: Path, workers: int, broker: str) -> dict[str, Any]:
    env = {**os.environ, **CHILD_ENV, "PYTHONPATH": str(ROOT)}
    with database("postgresql", workdir) as db_url:
        config = write_config(workdir, db_url, emu.url, broker)
        cli = [sys.executable, "-m", "collector.cli", "--config", str(config)]
        subprocess.run([*cli, "db", "upgrade"], check=True, env=env, capture_output=True)
        log = workdir / f"worker-{workers}.log"
        worker = subprocess.Popen([*cli, "worker", "--concurrency", str(workers)], env=env,
                                  stdout=log.open("w"), stderr=subprocess.STDOUT)
        try:
            emu.take_counts()
            started, emulator_cpu = time.monotonic(), time.process_time()
            done = subprocess.run([*cli, "collect"], env=env, capture_output=True, text=True)
            seconds = time.monotonic() - started
            # moto answers every call of every worker in this one process, under one GIL.
            emulator_cpu = time.process_time() - emulator_cpu
            if done.returncode != 0:
                raise RuntimeError(f"collect exited {done.returncode}:\n{done.stdout[-3000:]}"
                                   f"{done.stderr[-3000:]}")
            requests = sum(emu.take_counts().values())
            pool = _pool(worker.pid)
            rss = [_peak_rss_mb(pid) for pid in pool]
            main_rss = _peak_rss_mb(worker.pid)
            cpu = _cpu_seconds(worker.pid, reaped=True) + sum(
                _cpu_seconds(pid, reaped=False) for pid in pool)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
        engine = sa.create_engine(db_url)
        with engine.connect() as conn:
            resources = conn.scalar(sa.text(
                "SELECT COUNT(*) FROM resource_versions WHERE source LIKE 'aws-org/%'"))
            runs = conn.scalar(sa.text("SELECT COUNT(*) FROM runs"))
        engine.dispose()
    waits = [float(m) for m in _WAITED.findall(log.read_text())]
    return {"workers": workers, "seconds": seconds, "requests": requests,
            "resources": resources, "runs": runs, "pool_rss_mb": max(rss, default=0.0),
            "main_rss_mb": main_rss, "pool_cpu_s": cpu, "emulator_cpu_s": emulator_cpu,
            "seal_wait_ms_total": sum(waits),
            "seal_wait_ms_max": max(waits, default=0.0), "seals": len(waits)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--resources", type=int, default=200, help="per account")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per AWS answer")
    parser.add_argument("--workers", type=int, action="append",
                        help="worker concurrency to measure (repeatable; default 1 2 4 8)")
    args = parser.parse_args()
    broker = os.environ.get("ANNEXA_BENCH_REDIS", "redis://127.0.0.1:6379/14")
    queue = redis.Redis.from_url(broker)
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emu:
        started = time.monotonic()
        seed(emu.url, args.accounts, args.resources)
        print(f"seeded {args.accounts} accounts x {args.resources} resources in "
              f"{time.monotonic() - started:.0f}s", flush=True)
        emu.set_latency(args.latency)
        print("| workers | wall s | speed-up | requests | per resource | pool CPU s | emulator "
              "CPU s | worker process peak RSS MB | worker main MB | seals | chain lock wait "
              "total / max ms |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        first = None
        for workers in args.workers or [1, 2, 4, 8]:
            queue.flushdb()
            row = run_once(emu, Path(tmp), workers, broker)
            queue.flushdb()
            first = first or row["seconds"]
            print(f"| {workers} | {row['seconds']:.1f} | {first / row['seconds']:.2f} | "
                  f"{row['requests']} | {row['requests'] / max(row['resources'], 1):.3f} | "
                  f"{row['pool_cpu_s']:.1f} | {row['emulator_cpu_s']:.1f} | "
                  f"{row['pool_rss_mb']:.0f} | "
                  f"{row['main_rss_mb']:.0f} | {row['seals']} | "
                  f"{row['seal_wait_ms_total']:.0f} / {row['seal_wait_ms_max']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
