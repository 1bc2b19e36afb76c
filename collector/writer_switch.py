"""The writer of a source's first run: `writer: auto` chooses from the last run's size, and a
first run has none. It starts in this process, as a small source's runs stay, and hands over to
a writer process once the run has FIRST_RUN_PROCESS_FROM resources, so that a large estate's
first collection does not hold the store's page cache and batches beside the connector's
(20,000 Cloud Asset Inventory assets on SQLite: 192 MB inline, under 150 MB handed over).

The handover is safe only on a first run: an inline writer remembers, on its connection, the
earlier versions the run found unchanged, which a writer process could not know when it closes
what the run did not see. A first run has no earlier versions, so there is nothing to lose."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine

from collector.model import CollectionError
from collector.store import PendingResource, PendingResult, RunWriter, WriteStats
from collector.writer_process import RemoteWriter

FIRST_RUN_PROCESS_FROM = 5_000


class SwitchingWriter:
    """RunWriter's interface: inline until `switch_at` resources, then a RemoteWriter."""

    def __init__(self, engine: Engine, url: str, run_id: int, source: str,
                 switch_at: int = FIRST_RUN_PROCESS_FROM) -> None:
        self._url, self._run_id, self._source, self._switch_at = url, run_id, source, switch_at
        self._conn = engine.connect()
        self._inline: RunWriter | None = RunWriter(self._conn, run_id, source)
        self.remote: RemoteWriter | None = None
        self._before = WriteStats()
        self._errors_before: list[CollectionError] = []

    @property
    def mode(self) -> str:
        if self.remote is None:
            return "inline"
        return f"inline, then process from resource {self._before.resources + 1:,}"

    @property
    def _current(self) -> RunWriter | RemoteWriter:
        current = self.remote or self._inline
        assert current is not None
        return current

    @property
    def stats(self) -> WriteStats:
        return _sum(self._before, self._current.stats)

    @property
    def errors(self) -> list[CollectionError]:
        return self._errors_before + self._current.errors

    def add_resource(self, item: PendingResource) -> None:
        # Before a resource, never between one and its results: a batch and the results
        # judged from it stay together on either side.
        if self._inline is not None and self._inline.stats.resources >= self._switch_at:
            self._switch()
        self._current.add_resource(item)

    def add_result(self, item: PendingResult) -> None:
        self._current.add_result(item)

    def add_error(self, err: CollectionError) -> None:
        self._current.add_error(err)

    def finish(self, registered_checks: set[str] | None) -> WriteStats:
        self._current.finish(registered_checks)
        return self.stats

    def salvage(self) -> None:
        self._current.salvage()

    def close(self) -> None:
        if self.remote is not None:
            self.remote.close()
        self._conn.close()

    def _switch(self) -> None:
        inline = self._inline
        assert inline is not None
        # Written and committed, and the page cache given back, before the process starts.
        self._before = inline.finish(None)
        self._errors_before = inline.errors
        self._inline = None
        self._conn.close()
        self.remote = RemoteWriter(self._url, self._run_id, self._source)


def _sum(a: WriteStats, b: WriteStats) -> WriteStats:
    by_status = dict(a.by_status)
    for status, n in b.by_status.items():
        by_status[status] = by_status.get(status, 0) + n
    counts = {f.name: getattr(a, f.name) + getattr(b, f.name)
              for f in dataclasses.fields(WriteStats) if f.name != "by_status"}
    return WriteStats(**counts, by_status=by_status)
