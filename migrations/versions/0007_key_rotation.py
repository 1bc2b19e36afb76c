"""key rotation: the run that a new signing key seals first carries the key change and the
retired key's signature

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 21:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_change", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("handover_signature", sa.String(length=128),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("handover_signature")
        batch_op.drop_column("key_change")
