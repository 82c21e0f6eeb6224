"""The improvement loop: the review queue, the reviewed golden set, and the rollout arm of each answer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Frozen like 0001: plain SQLAlchemy types only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_items",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("collection", sa.String(200), nullable=True),
        sa.Column("adapter", sa.String(200), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("reviewed_by", sa.String(200), nullable=True),
        sa.Column("reviewed_at", _TS, nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("reference_sources", sa.JSON(), nullable=True),
        sa.Column("answerable", sa.Boolean(), nullable=True),
        sa.Column("training", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'accepted', 'rejected')", name="ck_review_items_status"),
        sa.PrimaryKeyConstraint("id", name="pk_review_items"),
        sa.UniqueConstraint("message_id", name="uq_review_items_message_id"),
    )
    op.create_index("ix_review_items_status_created", "review_items", ["status", "created_at"])
    op.create_table(
        "golden_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.String(32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("answerable", sa.Boolean(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("collection", sa.String(200), nullable=True),
        sa.Column("training", sa.Boolean(), nullable=False),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column("added_at", _TS, nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["review_items.id"], name="fk_golden_rows_review_id_review_items"),
        sa.PrimaryKeyConstraint("id", name="pk_golden_rows"),
    )
    op.create_index("ix_golden_rows_version", "golden_rows", ["version"])
    op.create_table(
        "answer_variants",
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("rollout", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(16), nullable=False),
        sa.Column("adapter", sa.String(200), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("rail_actions", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], name="fk_answer_variants_message_id_messages",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", name="pk_answer_variants"),
    )
    op.create_index("ix_answer_variants_rollout", "answer_variants", ["rollout", "variant"])


def downgrade() -> None:
    op.drop_index("ix_answer_variants_rollout", table_name="answer_variants")
    op.drop_table("answer_variants")
    op.drop_index("ix_golden_rows_version", table_name="golden_rows")
    op.drop_table("golden_rows")
    op.drop_index("ix_review_items_status_created", table_name="review_items")
    op.drop_table("review_items")
