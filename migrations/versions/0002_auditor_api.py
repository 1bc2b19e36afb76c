"""auditor API: bearer tokens (hashed) and the access log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=True),
        sa.Column("window_end", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "api_access_log",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("token_id", _ID, nullable=True),
        sa.Column("token_name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client", sa.String(length=100), nullable=True),
        sa.Column("sealed_run", _ID, nullable=True),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"],
                                name=op.f("fk_api_access_log_token_id_api_tokens")),
        sa.ForeignKeyConstraint(["sealed_run"], ["runs.id"],
                                name=op.f("fk_api_access_log_sealed_run_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_access_log")),
    )
    with op.batch_alter_table("api_access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_access_log_pending",
            ["id"],
            unique=False,
            sqlite_where=sa.text("sealed_run IS NULL"),
            postgresql_where=sa.text("sealed_run IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("api_access_log", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_api_access_log_pending",
            sqlite_where=sa.text("sealed_run IS NULL"),
            postgresql_where=sa.text("sealed_run IS NULL"),
        )
    op.drop_table("api_access_log")
    op.drop_table("api_tokens")
