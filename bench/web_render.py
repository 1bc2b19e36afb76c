"""The auditor's web page over a long history: the posture page (93 controls) at random past
instants of bench/history.py's synthetic year (about 1M resource versions in PostgreSQL), timed
at the server: the page's route as `annexa run` serves it, over loopback HTTP with the session
cookie (token lookup, access-log entry, posture, Jinja2 rendering), and the rendering alone;
and the proof material of random versions current at the end (`/proof/<version>`): the first
builds the last run's Merkle tree, the others reuse it.
Prints milliseconds; asserts nothing.

    python bench/web_render.py                     # about 1M versions (builds for minutes)
    python bench/web_render.py --resources 20000 --days 60
    python bench/web_render.py --url postgresql+psycopg://postgres@127.0.0.1/kept
"""

from __future__ import annotations

import contextlib
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
import sqlalchemy as sa

from bench.history import START, arguments, history

FRESHNESS = timedelta(days=2)


def _ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
            f"over {len(values)} samples")


def _current_versions(engine: sa.Engine, samples: int, rng: random.Random) -> list[int]:
    """Random versions that still hold at the history's end: all proved against its last run,
    whose Merkle tree the first of them builds and the others reuse."""
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.text(
            "SELECT id FROM resource_versions WHERE valid_to_run IS NULL")))
    return rng.sample(ids, min(samples + 1, len(ids)))


def measure(url: str, days: int, samples: int, seed: int) -> dict[str, list[float]]:
    from checks.registry import load_all
    from collector import tokens
    from collector.api import ApiServer, create_app
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.posture import control_states
    from collector.web.pages import posture_view
    from collector.web.rendering import page, stamp

    load_all()
    engine = engine_for(url)
    rng = random.Random(seed)
    instants = [START + timedelta(days=rng.uniform(1, days - 1)) for _ in range(samples)]
    out: dict[str, list[float]] = {"posture page, GET /?at= over HTTP": [],
                                   "posture page, data": [],
                                   "posture page, Jinja2 rendering": [],
                                   "proof, first of a run (tree built)": [],
                                   "proof, same run (tree kept)": []}
    with tempfile.TemporaryDirectory() as folder:
        signer = load_or_create_signer(Path(folder) / "signing.key")
        token, _ = tokens.create(engine, role="auditor", name="bench")
        server = ApiServer(create_app(engine, FRESHNESS, signer.public_hex, signer),
                           "127.0.0.1", 0)
        server.start()
        try:
            with requests.Session() as http:
                http.cookies.set("annexa_session", token)
                for at in instants:
                    started = time.perf_counter()
                    answer = http.get(f"{server.url}/", params={"at": stamp(at)}, timeout=600)
                    out["posture page, GET /?at= over HTTP"].append(time.perf_counter() - started)
                    answer.raise_for_status()
                    if answer.text.count('<tr id="A.') != 93:
                        raise SystemExit("the posture page did not list 93 controls")
                for i, version in enumerate(_current_versions(engine, samples, rng)):
                    started = time.perf_counter()
                    answer = http.get(f"{server.url}/proof/{version}",
                                      params={"at": stamp(START + timedelta(days=days))},
                                      timeout=600)
                    label = "proof, first of a run (tree built)" if i == 0 else \
                        "proof, same run (tree kept)"
                    out[label].append(time.perf_counter() - started)
                    answer.raise_for_status()
        finally:
            server.stop()
    for at in instants:
        started = time.perf_counter()
        with engine.connect() as conn:
            states = control_states(conn, at, FRESHNESS, failures=False)
        out["posture page, data"].append(time.perf_counter() - started)
        started = time.perf_counter()
        page("posture.html", who=None, at=at, path="/",
             **posture_view(states, None, None, None))
        out["posture page, Jinja2 rendering"].append(time.perf_counter() - started)
    engine.dispose()
    return out


def main() -> None:
    args = arguments(__doc__)
    with contextlib.ExitStack() as stack:
        url = history(stack, args)
        for label, values in measure(url, args.days, args.samples, args.seed).items():
            print(f"{label:<34}: {_ms(values)}", flush=True)


if __name__ == "__main__":
    main()
