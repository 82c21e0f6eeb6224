"""State shared by several API workers: rate-limit buckets, admission tickets, and leases on running jobs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

`rate_buckets`: one token bucket per API key (tokens left, and when, in Unix seconds), updated by one conditional
UPDATE per request so every worker spends from the same bucket. `admission_tickets`: one row per generation
running or waiting in any worker (expiring, so a killed worker's tickets lapse). `jobs.lease_owner` /
`jobs.lease_expires_at`: the worker running a job renews its lease; only a job whose lease lapsed is failed as
interrupted by another worker's start. Frozen like 0001: plain SQLAlchemy types only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    op.create_table(
        "admission_tickets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admission_tickets")),
    )
    op.create_index("ix_admission_tickets_expires_at", "admission_tickets", ["expires_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
    op.drop_index("ix_admission_tickets_expires_at", table_name="admission_tickets")
    op.drop_table("admission_tickets")
    op.drop_table("rate_buckets")
