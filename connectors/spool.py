"""Objects of one listing kept on disk by key, to be joined with another listing: the join
costs the same memory for ten users as for a million, where a dict would hold them all."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

# SQLite binds at most 32,766 variables a statement; lookups go in chunks well below it.
_CHUNK = 500
# Made once: json.dumps(separators=...) builds a new encoder at every call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def private_database() -> sqlite3.Connection:
    """A temporary on-disk SQLite database ("" names one) that SQLite deletes when it is
    closed. It outlives no crash, so it needs neither a journal nor syncs."""
    db = sqlite3.connect("")
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    return db


class KeyedSpool:
    """A private temporary SQLite file (gone when closed): put (key, JSON-able object) pairs,
    then take them by key. A key put twice keeps its last object."""

    def __init__(self) -> None:
        self._db = private_database()
        self._db.execute("CREATE TABLE spool (key TEXT PRIMARY KEY, body TEXT NOT NULL)")

    def put(self, pairs: Iterable[tuple[str, Any]]) -> None:
        with self._db:  # one transaction
            self._db.executemany("INSERT OR REPLACE INTO spool VALUES (?, ?)",
                                 ((key, _ENCODE(obj)) for key, obj in pairs))

    def take(self, keys: Sequence[str]) -> dict[str, Any]:
        """The objects of those `keys` that were put (and not taken before), removed."""
        found: dict[str, Any] = {}
        with self._db:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start:start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"DELETE FROM spool WHERE key IN ({marks}) "
                                        "RETURNING key, body", chunk).fetchall()
                found.update((key, json.loads(body)) for key, body in rows)
        return found

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> KeyedSpool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
