"""Annexa and Cloud Custodian side by side on the same emulated account: wall seconds, peak RSS,
requests received by the emulator, and how many of the planted misconfigurations each finds.

    python bench/peers.py              # N=1000
    python bench/peers.py --n 200      # a smaller account

Cloud Custodian (the `c7n` package) is installed by this script into its own virtual
environment, bench/.venv-c7n, and runs bench/custodian/policies.yml: policies equivalent to
Annexa's AWS checks. Annexa runs twice: with AWS Config recording S3 buckets (the state its own
check aws.config.recording_in_region asks for), and with Config stopped (S3 read bucket by
bucket). Both tools must find every planted gap: the script exits 1 if either misses one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import estate
from bench.aws_scale import annexa, last_run, machine, run_child, write_config
from bench.emulator import Emulator
from bench.measure import database

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-c7n"
POLICIES = BENCH / "custodian" / "policies.yml"
C7N_VERSION = "c7n==0.9.53"  # the version these figures were taken with


@dataclass
class Tool:
    name: str
    seconds: float
    peak_rss_mb: float
    requests: int
    found: dict[str, set[str]]  # gap name -> short ids reported


def custodian_bin() -> Path:
    """The custodian command in bench/.venv-c7n, installing it on first use."""
    binary = VENV / "bin" / "custodian"
    if not binary.exists():
        print(f"installing {C7N_VERSION} into {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", C7N_VERSION], check=True)
    return binary


def run_custodian(emu: Emulator, workdir: Path) -> Tool:
    out = workdir / "custodian-out"
    emu.take_counts()
    child = run_child(
        [str(custodian_bin()), "run", "-s", str(out), "--cache", str(workdir / "c7n.cache"),
         "-r", estate.REGIONS[0], "-r", estate.REGIONS[1], str(POLICIES)],
        workdir / "custodian.log", env={"AWS_ENDPOINT_URL": emu.url})
    requests = sum(emu.take_counts().values())
    if child.code != 0:
        raise RuntimeError(f"custodian exited {child.code}:\n{child.output[-3000:]}")
    found: dict[str, set[str]] = {}
    for gap in estate.GAPS:
        ids = found.setdefault(gap.name, set())
        # One output folder per region when several regions run.
        for path in out.glob(f"**/{gap.custodian_policy}/resources.json"):
            ids.update(str(r[gap.custodian_id]) for r in json.loads(path.read_text()))
    return Tool("Cloud Custodian", child.seconds, child.peak_rss_mb, requests, found)


def run_annexa(emu: Emulator, workdir: Path, db: str, label: str) -> Tool:
    with database(db, workdir) as url:
        config = write_config(workdir, url, emu.url)
        annexa(config, "db", "upgrade", log=workdir / "upgrade.log")
        emu.take_counts()
        child = annexa(config, "collect", log=workdir / "collect.log")
        requests = sum(emu.take_counts().values())
        failing = last_run(url)[5]
    found = {gap.name: failing.get(gap.annexa_check, set()) for gap in estate.GAPS}
    return Tool(label, child.seconds, child.peak_rss_mb, requests, found)


def report(n: int, planted: estate.Planted, tools: list[Tool]) -> bool:
    """Print the side-by-side table; True when every tool found every planted gap."""
    seeded = estate.seeded_resources(n)
    width = max(len(t.name) for t in tools) + 2
    labels = max(len(f"  {gap.name} (000)") for gap in estate.GAPS) + 2
    head = f"{'':<{labels}}" + "".join(f"{t.name:>{width}}" for t in tools)
    print(head)
    print("-" * len(head))

    def line(label: str, values: list[str]) -> None:
        print(f"{label:<{labels}}" + "".join(f"{v:>{width}}" for v in values))

    line("wall seconds", [f"{t.seconds:.1f}" for t in tools])
    line("peak RSS (MB)", [f"{t.peak_rss_mb:.0f}" for t in tools])
    line("emulator requests", [str(t.requests) for t in tools])
    line(f"requests per resource ({seeded} seeded)", [f"{t.requests / seeded:.2f}" for t in tools])
    print("planted gap (planted), then found by each")
    complete = True
    for gap in estate.GAPS:
        ids = planted.get(gap.name, set())
        cells = []
        for tool in tools:
            hit = len(ids & tool.found[gap.name])
            extra = len(tool.found[gap.name] - ids)
            complete &= hit == len(ids)
            cells.append(f"{hit}" + (f" (+{extra})" if extra else ""))
        line(f"  {gap.name} ({len(ids)})", cells)
    return complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="scale of the account (default 1000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="Annexa's database (default sqlite)")
    args = parser.parse_args()
    custodian_bin()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="annexa-peers-") as tmp, Emulator() as emu:
        workdir = Path(tmp)
        started = time.monotonic()
        planted = estate.seed(emu.url, args.n)
        emu.take_counts()
        print(f"N={args.n}: seeded {estate.seeded_resources(args.n)} resources with "
              f"{sum(len(v) for v in planted.values())} planted gaps in "
              f"{time.monotonic() - started:.0f}s; Annexa on {args.db}\n", flush=True)
        tools = [run_custodian(emu, workdir)]
        tools.append(run_annexa(emu, workdir, args.db, "Annexa (S3 via Config)"))
        estate.set_config_recording(emu.url, False)
        tools.append(run_annexa(emu, workdir, args.db, "Annexa (S3 direct)"))
        estate.set_config_recording(emu.url, True)
    complete = report(args.n, planted, tools)
    custodian = tools[0]
    for tool in tools[1:]:
        print(f"{tool.name}: {custodian.seconds / tool.seconds:.1f}x faster than Cloud "
              f"Custodian, {tool.requests / custodian.requests:.2f}x its requests")
    print("(+k): also reported, not planted. Every planted gap found by every tool: "
          + ("yes" if complete else "NO"))
    sys.exit(0 if complete else 1)


if __name__ == "__main__":
    main()
