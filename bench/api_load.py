"""The auditor API under load: 50 concurrent clients for 60 s against a seeded store (a
synthetic history from bench/history.py in a throwaway PostgreSQL) served by the real server
(uvicorn, one process, as `annexa run` serves it), on loopback only. Each client is a thread
with its own keep-alive connection that asks the endpoints in turn, at random instants of the
history; every request is logged in the access log, as in production. Prints per endpoint the
requests, requests/s, p50 and p99 latency and the errors (anything but 200, or no answer).
Asserts nothing.

    python bench/api_load.py                    # 50 clients, 60 s
    python bench/api_load.py --seconds 20 --clients 10
    python bench/api_load.py --url postgresql+psycopg://postgres@127.0.0.1/kept
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
import sqlalchemy as sa

from bench.history import START, build
from bench.measure import database

FRESHNESS = timedelta(days=2)
HOST = "127.0.0.1"  # loopback only: the benchmark never leaves the machine
REQUEST_TIMEOUT = 60.0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="how long the clients ask (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--resources", type=int, default=2000,
                        help="resources alive at any time in the seeded history")
    parser.add_argument("--days", type=int, default=60, help="daily runs in the history")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", help="a PostgreSQL database that holds a bench/history.py "
                                      "history already (reused as it is)")
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600 or not 1 <= args.clients <= 500:
        parser.error("--seconds must be in (0, 3600] and --clients in [1, 500]")
    return args


def _serve(url: str, listening: socket.socket, key: Path) -> None:
    """The child process: the app as `annexa run` builds it, on the socket made for it."""
    import uvicorn

    from checks.registry import load_all
    from collector.api import create_app
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer

    load_all()
    signer = load_or_create_signer(key)
    app = create_app(engine_for(url), FRESHNESS, signer.public_hex, signer)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                  lifespan="off")).run(sockets=[listening])


@contextlib.contextmanager
def served(url: str, folder: Path) -> Iterator[str]:
    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((HOST, 0))
    listening.listen(1024)
    base = f"http://{HOST}:{listening.getsockname()[1]}"
    child = multiprocessing.get_context("fork").Process(
        target=_serve, args=(url, listening, folder / "signing.key"), daemon=True)
    child.start()
    try:
        for _ in range(600):  # at most a minute for the app to load
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(base + "/openapi.json", timeout=5).ok:
                    break
            if not child.is_alive():
                raise RuntimeError("the API server exited while starting")
            time.sleep(0.1)
        else:
            raise RuntimeError("the API server did not answer within a minute")
        yield base
    finally:
        child.terminate()
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(10)
        listening.close()


Ask = Callable[[requests.Session, random.Random], requests.Response]


def endpoints(base: str, url: str, days: int) -> dict[str, Ask]:
    from collector.web.rendering import stamp

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        digests = list(conn.scalars(sa.text(
            "SELECT digest FROM resource_versions WHERE valid_to_run IS NULL LIMIT 1000")))
    engine.dispose()

    def instant(rng: random.Random) -> str:
        return stamp(START + timedelta(days=rng.uniform(1, days - 1)))

    return {
        "GET /controls?at=": lambda s, rng: s.get(
            f"{base}/controls", params={"at": instant(rng)}, timeout=REQUEST_TIMEOUT),
        "GET /snapshot?at=&summary=true": lambda s, rng: s.get(
            f"{base}/snapshot", params={"at": instant(rng), "summary": "true"},
            timeout=REQUEST_TIMEOUT),
        "GET /results?at=&limit=100": lambda s, rng: s.get(
            f"{base}/results", params={"at": instant(rng), "limit": "100"},
            timeout=REQUEST_TIMEOUT),
        "GET /evidence/{digest}": lambda s, rng: s.get(
            f"{base}/evidence/{rng.choice(digests)}", timeout=REQUEST_TIMEOUT),
        "GET /runs?limit=100": lambda s, rng: s.get(
            f"{base}/runs", params={"limit": "100", "offset": str(rng.randrange(days))},
            timeout=REQUEST_TIMEOUT),
        "GET /?at= (web page)": lambda s, rng: s.get(
            f"{base}/", params={"at": instant(rng)}, timeout=REQUEST_TIMEOUT),
    }


def load(asks: dict[str, Ask], token: str, clients: int, seconds: float, seed: int,
         ) -> tuple[dict[str, list[float]], dict[str, int], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    names = list(asks)
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        mine: list[tuple[str, float, bool]] = []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {token}"
            session.cookies.set("annexa_session", token)
            start.wait()
            turn = n
            while time.perf_counter() < deadline[0]:
                name = names[turn % len(names)]
                turn += 1
                began = time.perf_counter()
                try:
                    ok = asks[name](session, rng).status_code == 200
                except requests.RequestException:
                    ok = False
                mine.append((name, time.perf_counter() - began, ok))
        with lock:
            for name, seconds_taken, ok in mine:
                latencies[name].append(seconds_taken)
                errors[name] += not ok

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    for thread in threads:  # a request still in flight at the deadline ends within its timeout
        thread.join(seconds + REQUEST_TIMEOUT + 10)
    return latencies, errors, time.perf_counter() - began


def _ms(values: list[float], q: float) -> str:
    if len(values) < 2:
        return f"{values[0] * 1000:.0f}" if values else "-"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[round(q) - 1] * 1000:.0f}"


def report(latencies: dict[str, list[float]], errors: dict[str, int], wall: float,
           clients: int) -> None:
    print(f"{clients} clients for {wall:.1f} s on loopback")
    print("| endpoint | requests | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    everything: list[float] = []
    for name in sorted(latencies):
        values = latencies[name]
        everything += values
        print(f"| {name} | {len(values):,} | {len(values) / wall:.1f} | {_ms(values, 50)} | "
              f"{_ms(values, 99)} | {errors[name]} |")
    print(f"| all | {len(everything):,} | {len(everything) / wall:.1f} | "
          f"{_ms(everything, 50)} | {_ms(everything, 99)} | {sum(errors.values())} |")


def main() -> None:
    args = arguments()
    from collector import tokens
    from collector.db import engine_for

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = args.url or stack.enter_context(database("postgresql", folder))
        if not args.url:
            began = time.monotonic()
            counts = build(url, args.resources, args.days, 0.01)
            print(f"seeded: {args.days} runs, {counts['versions']:,} resource versions, "
                  f"{counts['results']:,} results in {time.monotonic() - began:.0f}s",
                  flush=True)
        engine = engine_for(url)
        token, _ = tokens.create(engine, role="auditor", name=f"bench-{time.time_ns()}")
        engine.dispose()
        base = stack.enter_context(served(url, folder))
        asks = endpoints(base, url, args.days)
        latencies, errors, wall = load(asks, token, args.clients, args.seconds, args.seed)
        report(latencies, errors, wall, args.clients)


if __name__ == "__main__":
    main()
