"""The ORM tables: API keys, conversations with their messages and citations, feedback, jobs.

Only the `assistant.db` stores (and assistant/shared_limits.py) touch these classes; everything outside gets the plain records
of `records.py`, so no caller holds a live ORM object across a session (async handlers would
otherwise hit detached-instance errors). Changing a table means a new Alembic revision in
`assistant/migrations/versions/`; `tests/test_db.py` fails while the two disagree.

Documents are not here: the ingestion docstore (`ingestion/docstore.py`) already owns them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: SQLite's batch migrations and PostgreSQL both need stable names to alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out. SQLite keeps no offset, so we re-attach it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex; see keys.py
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a key in lists
    scopes: Mapped[list[str]] = mapped_column(JSON)
    collections: Mapped[list[str]] = mapped_column(JSON)
    all_collections: Mapped[bool] = mapped_column(Boolean)
    # Exact browser origins ("https://tickets.example.com") that may call the API with this key (chat-only keys).
    allowed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_key_updated", "key_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # Keys are revoked, never deleted, so no ON DELETE: history stays attributable to its key.
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    collections: Mapped[list[str] | None] = mapped_column(JSON)  # None = every collection the key may read
    adapter: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.position", passive_deletes=True
    )


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # `position` orders a conversation exactly; timestamps can tie within a clock tick.
        UniqueConstraint("conversation_id", "position", name="uq_messages_conversation_position"),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    model: Mapped[str | None] = mapped_column(String(200))
    adapter: Mapped[str | None] = mapped_column(String(200))
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    timing: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # ms: retrieval, first_token, total; token counts
    refused: Mapped[bool] = mapped_column(Boolean, default=False)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    citations: Mapped[list[CitationRow]] = relationship(order_by="CitationRow.number", passive_deletes=True)


class CitationRow(Base):
    """Named *Row* so it never shadows `assistant.answer.Citation`, which it stores."""

    __tablename__ = "citations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(String(500))
    page: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="")
    chunk_id: Mapped[int | None] = mapped_column(Integer)
    collection: Mapped[str | None] = mapped_column(String(200))
    snippet: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float | None] = mapped_column(Float)
    dense_score: Mapped[float | None] = mapped_column(Float)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "key_id", name="uq_feedback_message_key"),  # one vote per key
        CheckConstraint("rating IN (-1, 1)", name="rating"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_key_created", "key_id", "created_at"),
        Index("ix_jobs_status", "status"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    collection: Mapped[str] = mapped_column(String(200))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. {"files": [...]}: what the job was asked to do
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker running the job and until when its lease holds (renewed while it runs): with several API
    # workers, only a job whose lease lapsed (its worker died) is failed as interrupted.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateBucket(Base):
    """A key's token bucket shared by every API worker (assistant/shared_limits.py)."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)  # Unix seconds of the last spend or refusal


class AdmissionTicket(Base):
    """A generation running or waiting in some worker; counted to bound the deployment's queue."""

    __tablename__ = "admission_tickets"
    __table_args__ = (Index("ix_admission_tickets_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    worker: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[float] = mapped_column(Float)  # Unix seconds: a ticket a killed worker left lapses


class ReviewItem(Base):
    """An answer a person should look at: thumbs-down, a refusal of a question retrieval scored high, or an answer a
    rail replaced. Texts are stored PII-masked (the reviewer sees only masked text); the row outlives its
    conversation (no foreign key), so deleting a chat never deletes the review it prompted."""

    __tablename__ = "review_items"
    __table_args__ = (
        UniqueConstraint("message_id", name="uq_review_items_message_id"),  # one item per answer, whatever flagged it
        CheckConstraint("status IN ('open', 'accepted', 'rejected')", name="status"),
        Index("ix_review_items_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    message_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32))  # "thumbs_down" | "refused_high_score" | "rail_replaced"
    status: Mapped[str] = mapped_column(String(16), default="open")
    collection: Mapped[str | None] = mapped_column(String(200))
    adapter: Mapped[str | None] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    best_score: Mapped[float | None] = mapped_column(Float)  # best dense retrieval score of the question (cosine)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # {document, page} the answer had
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reference: Mapped[str | None] = mapped_column(Text)
    reference_sources: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    answerable: Mapped[bool | None] = mapped_column(Boolean)
    training: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)  # the reviewer's why


class GoldenRow(Base):
    """A row of the reviewed golden set. Append-only: version N of the set is every row with version <= N."""

    __tablename__ = "golden_rows"
    __table_args__ = (Index("ix_golden_rows_version", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer)
    review_id: Mapped[str] = mapped_column(ForeignKey("review_items.id"))
    question: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    answerable: Mapped[bool] = mapped_column(Boolean)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    collection: Mapped[str | None] = mapped_column(String(200))
    training: Mapped[bool] = mapped_column(Boolean, default=False)  # also offered to the next fine-tune
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    why: Mapped[str] = mapped_column(Text, default="")


class AnswerVariant(Base):
    """Which arm of a staged rollout wrote an answer, with the figures the live readout compares."""

    __tablename__ = "answer_variants"
    __table_args__ = (Index("ix_answer_variants_rollout", "rollout", "variant"),)

    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    rollout: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16))  # "control" | "candidate"
    adapter: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)
    rail_actions: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
