"""Runs several resource generators at once and streams their items through one bounded queue,
so a slow service or region does not hold up the others and memory stays flat."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class _Done:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def interleave(tasks: list[Callable[[], Iterator[T]]], workers: int,
               buffer: int = 256) -> Iterator[T]:
    """Yield the items of every task as they come. An exception in a task is raised here;
    closing this generator early stops the tasks at their next item."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield from task()
        return
    items: queue.Queue[object] = queue.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(task: Callable[[], Iterator[T]]) -> None:
        try:
            for item in task():
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which decides
            put(_Failed(exc))
        finally:
            put(_Done())

    pool = ThreadPoolExecutor(max_workers=min(workers, len(tasks)),
                              thread_name_prefix="annexa-fetch")
    for task in tasks:
        pool.submit(run, task)
    remaining = len(tasks)
    try:
        while remaining:
            item = items.get()
            if isinstance(item, _Done):
                remaining -= 1
            elif isinstance(item, _Failed):
                raise item.exc
            else:
                yield item  # type: ignore[misc]
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
