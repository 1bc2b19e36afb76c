"""ledger verifications: when the ledger was last verified, by whom, and whether it held

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 23:00:00.000000

A table rather than a reserved ledger source: sealing each verification into the chain would
move the chain's head with every verify (an `--expect-head` witness would chase it), and a
verify that found the chain broken would have to seal onto the very chain it refuses.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_verifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=True),
        sa.Column("by", sa.String(length=20), nullable=False),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_verifications")),
    )
    op.create_index(op.f("ix_ledger_verifications_finished_at"), "ledger_verifications",
                    ["finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_verifications_finished_at"), "ledger_verifications")
    op.drop_table("ledger_verifications")
