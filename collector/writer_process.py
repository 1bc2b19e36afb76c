"""A run's evidence written by a second process.

Collecting, redacting, hashing and checking are Python work; so is most of storing (binding
rows, compressing, comparing with the open intervals). Threads would take turns on one core (the
GIL), so a large run hands storing to a process of its own: this one streams batches to it
through a pipe, and the pipe's bounded buffer holds the collector back when storing lags.
That process runs the same RunWriter as an inline run, on its own connection.

Its lifetime is the pipe's: it ignores SIGINT and SIGTERM (the service's stop handling ends the
run and then the pipe), and when the collecting process dies it stores what had arrived and
exits, leaving the run for recover_abandoned() to seal as interrupted.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import subprocess
import sys
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from collector.db import engine_for
from collector.model import CollectionError
from collector.store import RESULTS_PER_BATCH, PendingResource, PendingResult, RunWriter, WriteStats


class WriterProcessError(RuntimeError):
    """The writer process failed or vanished; the message says why."""


def shareable_url(engine: Engine) -> str | None:
    """The engine's URL as another process must open it, or None when it cannot (an in-memory
    SQLite database lives in this process only)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            return None
        url = url.set(database=str(Path(url.database).resolve()))
    return url.render_as_string(hide_password=False)


def serve(inbox: Pipe, outbox: Pipe) -> None:
    """The writer process: a run's batches in, its WriteStats out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    engine = None
    try:
        _, (url, run_id, source, batch) = inbox.recv()
        engine = engine_for(url, check_schema=False)
        with engine.connect() as conn:
            writer = RunWriter(conn, run_id, source, batch)
            gc.freeze()  # as collect_source() does: what lives now lives through the run
            try:
                _write_run(writer, inbox, outbox)
            except Exception:
                writer.salvage()  # the batches around a failed one are evidence all the same
                raise
    except Exception as exc:
        outbox.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        if engine is not None:
            engine.dispose()


def _write_run(writer: RunWriter, inbox: Pipe, outbox: Pipe) -> None:
    while True:
        try:
            op, payload = inbox.recv()
        except EOFError:  # the collecting process is gone: keep what arrived
            writer.finish(None)
            return
        if op == "batch":
            resources, results = payload
            for row in resources:
                writer.add_resource(PendingResource(*row))
            for row in results:
                writer.add_result(PendingResult(*row))
            writer.end_batch()  # now, while the collector reads the next one
        elif op == "results":
            for row in payload:
                writer.add_result(PendingResult(*row))
        elif op == "error":
            writer.add_error(payload)
        elif op == "finish":
            stats = writer.finish(None if payload is None else set(payload))
            outbox.send(("done", stats, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
            return


class RemoteWriter:
    """RunWriter's interface, with the writing done by a writer process."""

    def __init__(self, url: str, run_id: int, source: str, batch: int = 1000) -> None:
        self.batch = batch
        self.stats = WriteStats()
        self.peak_rss_kb = 0
        # This process's peak while the writer lived: the two run side by side only until
        # close(), so their joint peak is at most this plus the writer's.
        self.own_peak_rss_kb = 0
        self._errors: list[CollectionError] = []
        self._resources: list[tuple[Any, ...]] = []
        self._results: list[tuple[Any, ...]] = []
        self._failure: str | None = None
        # A fresh interpreter rather than a fork: the service forks nothing while its threads
        # may hold locks. The URL travels through the pipe, not argv, where ps would show it.
        inbox_r, inbox_w = os.pipe()
        outbox_r, outbox_w = os.pipe()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(inbox_r), str(outbox_w)],
            pass_fds=(inbox_r, outbox_w), stdin=subprocess.DEVNULL)
        # Only the writer holds these ends now, so each side sees EOF when the other dies.
        os.close(inbox_r)
        os.close(outbox_w)
        self._inbox = Pipe(inbox_w, readable=False)
        self._outbox = Pipe(outbox_r, writable=False)
        self._send("start", (url, run_id, source, batch))

    @property
    def errors(self) -> list[CollectionError]:
        return list(self._errors)

    def add_resource(self, item: PendingResource) -> None:
        if len(self._resources) >= self.batch:
            # With the results judged so far: the writer batches a resource with them.
            self._send("batch", (self._resources, self._results))
            self._resources, self._results = [], []
        self._resources.append((item.kind, item.key, item.scope, item.region, item.digest,
                                item.body))
        self.stats.resources += 1

    def add_result(self, item: PendingResult) -> None:
        self._results.append((item.check_id, item.subject, item.kind, item.region, item.status,
                              item.reason, item.evidence, item.per_resource, item.digest))
        self.stats.results += 1
        self.stats.by_status[item.status] = self.stats.by_status.get(item.status, 0) + 1
        if len(self._results) >= self.batch * RESULTS_PER_BATCH:
            self._send("results", self._results)
            self._results = []

    def add_error(self, err: CollectionError) -> None:
        self._errors.append(err)
        self._send("error", err)

    def finish(self, registered_checks: set[str] | None) -> WriteStats:
        """As RunWriter.finish(), then wait for the writer to report and exit."""
        if self._resources or self._results:
            self._send("batch", (self._resources, self._results))
        self._resources, self._results = [], []
        self._send("finish", None if registered_checks is None else sorted(registered_checks))
        reply = self._reply()
        self.stats, self.peak_rss_kb = reply[1], reply[2]
        self._proc.wait()
        return self.stats

    def salvage(self) -> None:
        """After the run failed here: store what is pending, unless the writer is what failed."""
        if self._failure is None:
            self.finish(None)

    def close(self) -> None:
        self._inbox.close()
        try:
            self._proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._outbox.close()
        self.own_peak_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def _send(self, op: str, payload: Any) -> None:
        if self._failure is not None:
            raise WriterProcessError(self._failure)
        try:
            self._inbox.send((op, payload))
        except OSError:  # it stopped reading: its report says why
            self._reply()
            raise WriterProcessError("the writer process stopped reading before the end of "
                                     "the run") from None

    def _reply(self) -> tuple[Any, ...]:
        try:
            reply = self._outbox.recv()
        except EOFError:
            try:
                code = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = None
            reply = ("failed", f"the writer process exited ({code}) without reporting")
        if reply[0] != "done":
            self._failure = f"evidence writer process failed: {reply[1]}"
            raise WriterProcessError(self._failure)
        return reply


if __name__ == "__main__":
    serve(Pipe(int(sys.argv[1]), writable=False), Pipe(int(sys.argv[2]), readable=False))
