"""run locks: one run of a source in progress at a time across processes (SQLite)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 20:00:00.000000

PostgreSQL holds the same lock as an advisory lock, which ends with the holder's connection;
the table exists there too, unused, so both databases have one schema.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_locks",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=300), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_run_locks")),
    )


def downgrade() -> None:
    op.drop_table("run_locks")
