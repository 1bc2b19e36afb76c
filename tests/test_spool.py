"""KeyedSpool: objects of one listing on disk by key, taken once each, for a join."""

from __future__ import annotations

import sqlite3

import pytest

from connectors.spool import KeyedSpool


def test_objects_are_taken_by_key_once_and_the_file_goes_with_the_spool() -> None:
    with KeyedSpool() as spool:
        spool.put((f"id-{i}", {"n": i, "methods": ["fido2"] * (i % 3)}) for i in range(1_200))
        spool.put([("id-7", {"n": "replaced"})])
        wanted = [f"id-{i}" for i in range(0, 1_300, 2)]  # past the chunk size, some unknown
        found = spool.take(wanted)
        assert set(found) == {f"id-{i}" for i in range(0, 1_200, 2)}
        assert found["id-4"] == {"n": 4, "methods": ["fido2"]}
        assert spool.take(["id-4", "id-7"]) == {"id-7": {"n": "replaced"}}
    with pytest.raises(sqlite3.ProgrammingError):
        spool.take(["id-8"])  # closed: SQLite has deleted its temporary file
