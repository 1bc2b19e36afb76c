"""connectors.streams.interleave: every item once, failures surface, early close stops work."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connectors.streams import interleave


def _count(start: int, n: int) -> Iterator[int]:
    yield from range(start, start + n)


def test_every_item_of_every_task_arrives_once():
    tasks = [lambda i=i: _count(i * 1000, 300) for i in range(6)]
    items = list(interleave(tasks, workers=4, buffer=8))
    assert sorted(items) == sorted(x for i in range(6) for x in range(i * 1000, i * 1000 + 300))


def test_a_failing_task_raises_in_the_consumer():
    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("service exploded")

    with pytest.raises(RuntimeError, match="service exploded"):
        list(interleave([lambda: _count(0, 50), broken], workers=2))


def test_closing_early_stops_the_producers():
    produced = []
    lock = threading.Lock()

    def endless() -> Iterator[int]:
        for i in range(1_000_000):
            with lock:
                produced.append(i)
            yield i

    stream = interleave([endless, endless], workers=2, buffer=4)
    assert next(stream) == 0
    stream.close()
    with lock:
        count = len(produced)
    assert count < 1000, "producers kept running after the consumer closed the stream"
