"""API keys get `allowed_origins`: the browser origins (embeddable widget) that may use the key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Frozen like 0001: plain SQLAlchemy types only. Existing keys get an empty list (no browser origin).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("allowed_origins", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allowed_origins")
