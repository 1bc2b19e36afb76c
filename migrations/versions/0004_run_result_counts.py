"""run summaries: result counts kept on each sealed run, an index of failing results, and
versions indexed by key whether open or closed

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
    op.create_index("ix_resource_versions_key", "resource_versions",
                    ["source", "key", "valid_from_run"])
    op.drop_index("ix_resource_versions_open", table_name="resource_versions")


def downgrade() -> None:
    op.create_index("ix_resource_versions_open", "resource_versions", ["source", "key"],
                    sqlite_where=sa.text("valid_to_run IS NULL"),
                    postgresql_where=sa.text("valid_to_run IS NULL"))
    op.drop_index("ix_resource_versions_key", table_name="resource_versions")
    op.drop_index("ix_check_results_notable", table_name="check_results")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("result_counts")
