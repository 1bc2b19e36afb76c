"""evidence tables without foreign keys: PostgreSQL checked each one with a row trigger

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 01:00:00.000000

A foreign key costs PostgreSQL a trigger and a lookup per inserted row: about 14 microseconds a
result row, more than the row's own insert, on every resource and result of every run. What they
guarded is the ledger's to prove: `annexa verify` finds any version whose blob is missing and
recomputes every run's state from the rows themselves; rows are only ever written by the
pipeline, in the run they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OPEN = sa.text("valid_to_run IS NULL")
_NOTABLE = sa.text("status IN ('fail', 'error')")
_KEYS = {
    "blobs": [("fk_blobs_first_run_runs", "first_run", "runs", "id")],
    "resource_versions": [
        ("fk_resource_versions_digest_blobs", "digest", "blobs", "digest"),
        ("fk_resource_versions_valid_from_run_runs", "valid_from_run", "runs", "id"),
        ("fk_resource_versions_valid_to_run_runs", "valid_to_run", "runs", "id"),
    ],
    "check_results": [
        ("fk_check_results_valid_from_run_runs", "valid_from_run", "runs", "id"),
        ("fk_check_results_valid_to_run_runs", "valid_to_run", "runs", "id"),
    ],
}
# SQLite rebuilds a table to drop a constraint; its partial indexes are made again as they were.
_PARTIAL = [
    ("ix_check_results_open", "check_results", ["source", "subject"], _OPEN),
    ("ix_check_results_notable", "check_results", ["source", "valid_to_run", "valid_from_run"],
     _NOTABLE),
]


def upgrade() -> None:
    for table, keys in _KEYS.items():
        with _rebuilt(table) as batch_op:
            for name, _, _, _ in keys:
                batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, keys in _KEYS.items():
        with _rebuilt(table) as batch_op:
            for name, column, referred, referred_column in keys:
                batch_op.create_foreign_key(name, referred, [column], [referred_column])


@contextmanager
def _rebuilt(table: str) -> Iterator[BatchOperations]:
    partial = [p for p in _PARTIAL if p[1] == table]
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name, _, _, _ in partial:
            op.drop_index(name, table_name=table)
    with op.batch_alter_table(table) as batch_op:
        yield batch_op
    if sqlite:
        for name, _, columns, where in partial:
            op.create_index(name, table, columns, sqlite_where=where)
