"""Thumbs up/down on answers: one vote per key per message, a new vote replaces the old one.

A key may vote only on assistant messages in its own conversations; anything else behaves as
an unknown message (None), so message ids of other keys cannot be probed. Votes are the raw
material for evaluation and the next fine-tune, so admins can list them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.db.models import Conversation, Feedback, Message, utcnow
from assistant.db.records import FeedbackRecord

if TYPE_CHECKING:
    from assistant.db.database import Database

MAX_COMMENT_CHARS = 2000


class FeedbackStore:
    def __init__(self, database: Database):
        self.db = database

    def set(self, message_id: str, key_id: str, rating: int, comment: str | None = None) -> FeedbackRecord | None:
        """Record (or replace) this key's vote; None when the message is not an answer in its conversations."""
        if rating not in (1, -1):
            raise ValueError("rating must be +1 or -1")
        comment = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
        for attempt in (1, 2):
            try:
                with self.db.session() as session:
                    if not _votable(session, message_id, key_id):
                        return None
                    row = session.scalars(
                        select(Feedback).where(Feedback.message_id == message_id, Feedback.key_id == key_id)
                    ).one_or_none()
                    if row is None:
                        row = Feedback(message_id=message_id, key_id=key_id)
                        session.add(row)
                    row.rating, row.comment, row.created_at = rating, comment, utcnow()
                    session.flush()
                    return _record(row)
            except IntegrityError:
                # Two votes of one key raced and both inserted; the unique constraint kept one.
                # Retrying turns this one into the replacement it should have been.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, message_id: str, key_id: str) -> FeedbackRecord | None:
        with self.db.session() as session:
            row = session.scalars(
                select(Feedback).where(Feedback.message_id == message_id, Feedback.key_id == key_id)
            ).one_or_none()
            return _record(row) if row else None

    def clear(self, message_id: str, key_id: str) -> bool:
        """Withdraw this key's vote; False when there was none."""
        with self.db.session() as session:
            result = session.execute(
                delete(Feedback).where(Feedback.message_id == message_id, Feedback.key_id == key_id)
            )
            return bool(result.rowcount)

    def list(self, limit: int = 100, offset: int = 0, rating: int | None = None) -> list[FeedbackRecord]:
        """Every key's votes, newest first: for admins and evaluation, never for ordinary keys."""
        query = select(Feedback).order_by(Feedback.created_at.desc(), Feedback.id)
        if rating is not None:
            query = query.where(Feedback.rating == rating)
        with self.db.session() as session:
            return [_record(r) for r in session.scalars(query.limit(max(0, limit)).offset(max(0, offset)))]


def _votable(session: Session, message_id: str, key_id: str) -> bool:
    owner = session.scalar(
        select(Conversation.key_id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(Message.id == message_id, Message.role == "assistant")
    )
    return owner is not None and owner == key_id


def _record(row: Feedback) -> FeedbackRecord:
    return FeedbackRecord(
        id=row.id,
        message_id=row.message_id,
        key_id=row.key_id,
        rating=row.rating,
        comment=row.comment,
        created_at=row.created_at,
    )
