"""run summaries: result counts kept on each sealed run, and an index of failing results

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NOTABLE = sa.text("status IN ('fail', 'error')")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_counts", sa.Text(), nullable=True))
    op.create_index("ix_check_results_notable", "check_results",
                    ["source", "valid_to_run", "valid_from_run"],
                    sqlite_where=_NOTABLE, postgresql_where=_NOTABLE)


def downgrade() -> None:
    op.drop_index("ix_check_results_notable", table_name="check_results")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("result_counts")
