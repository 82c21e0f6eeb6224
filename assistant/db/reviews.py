"""The review queue and the reviewed golden set it feeds.

An answer is queued at most once (unique message id): a thumbs-down on an answer already queued as a
high-score refusal adds the comment instead of a second item. Accepting an item writes one golden row at the
next set version in the same transaction, so the set and the queue never disagree after a crash. Every text
arrives here masked (the review service masks it); nothing in this module sees raw personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from sqlalchemy.orm import selectinload

from assistant.db.models import GoldenRow, Message, ReviewItem, utcnow
from assistant.db.records import MessageRecord, _Record

if TYPE_CHECKING:
    from assistant.db.database import Database

REASONS = ("thumbs_down", "refused_high_score", "rail_replaced")
STATUSES = ("open", "accepted", "rejected")


class ReviewStateError(ValueError):
    """The item was already decided (accepting or rejecting twice)."""


@dataclass(frozen=True)
class ReviewRecord(_Record):
    id: str
    message_id: str | None
    reason: str
    status: str
    collection: str | None
    adapter: str | None
    question: str
    answer: str
    comment: str | None
    best_score: float | None
    sources: tuple[dict[str, Any], ...]
    created_at: datetime
    reviewed_by: str | None
    reviewed_at: datetime | None
    reference: str | None
    reference_sources: tuple[dict[str, Any], ...] | None
    answerable: bool | None
    training: bool
    note: str | None


@dataclass(frozen=True)
class GoldenRecord(_Record):
    id: int
    version: int
    review_id: str
    question: str
    reference: str
    answerable: bool
    sources: tuple[dict[str, Any], ...]
    collection: str | None
    training: bool
    added_by: str
    added_at: datetime
    why: str

    def golden_row(self) -> dict[str, Any]:
        """The row as eval/golden.py reads it (JSONL), with its provenance."""
        return {"id": f"review-{self.review_id}", "question": self.question, "reference": self.reference,
                "answerable": self.answerable, "sources": list(self.sources),
                "provenance": {"version": self.version, "by": self.added_by, "at": self.added_at.isoformat(),
                               "why": self.why, "collection": self.collection}}


class ReviewStore:
    def __init__(self, database: Database):
        self.db = database

    def add(self, reason: str, message_id: str | None, question: str, answer: str, *, comment: str | None = None,
            collection: str | None = None, adapter: str | None = None, best_score: float | None = None,
            sources: list[dict[str, Any]] | None = None) -> ReviewRecord:
        """Queue an answer; if it is queued already, keep that item (adding a comment it lacked)."""
        if reason not in REASONS:
            raise ValueError(f"unknown review reason {reason!r} (known: {', '.join(REASONS)})")
        with self.db.session() as session:
            row = session.scalars(select(ReviewItem).where(ReviewItem.message_id == message_id)).one_or_none() \
                if message_id else None
            if row is None:
                row = ReviewItem(reason=reason, message_id=message_id, question=question, answer=answer, comment=comment,
                                 collection=collection, adapter=adapter, best_score=best_score, sources=sources or [],
                                 status="open", training=False)
                session.add(row)
            elif comment and not row.comment:
                row.comment = comment
            session.flush()
            return _review(row)

    def get(self, item_id: str) -> ReviewRecord | None:
        with self.db.session() as session:
            row = session.get(ReviewItem, item_id)
            return _review(row) if row else None

    def list(self, status: str | None = "open", limit: int = 100, offset: int = 0) -> list[ReviewRecord]:
        query = select(ReviewItem).order_by(ReviewItem.created_at.desc(), ReviewItem.id)
        if status:
            query = query.where(ReviewItem.status == status)
        with self.db.session() as session:
            return [_review(r) for r in session.scalars(query.limit(max(0, limit)).offset(max(0, offset)))]

    def counts(self) -> dict[str, int]:
        with self.db.session() as session:
            found = dict(session.execute(select(ReviewItem.status, func.count()).group_by(ReviewItem.status)).all())
        return {s: int(found.get(s, 0)) for s in STATUSES}

    def decide(self, item_id: str, accept: bool, reviewer: str, *, reference: str | None = None,
               sources: list[dict[str, Any]] | None = None, answerable: bool = True, training: bool = False,
               note: str = "") -> tuple[ReviewRecord, GoldenRecord | None] | None:
        """Accept (golden row at the next version) or reject an open item; None when there is no such item."""
        with self.db.session() as session:
            row = session.get(ReviewItem, item_id, with_for_update=True)
            if row is None:
                return None
            if row.status != "open":
                raise ReviewStateError(f"review {item_id} is already {row.status}")
            row.status = "accepted" if accept else "rejected"
            row.reviewed_by, row.reviewed_at, row.note = reviewer, utcnow(), note or None
            golden = None
            if accept:
                row.reference, row.answerable, row.training = reference or "", answerable, training
                row.reference_sources = sources or []
                version = (session.scalar(select(func.max(GoldenRow.version))) or 0) + 1
                golden = GoldenRow(version=version, review_id=row.id, question=row.question, reference=row.reference,
                                   answerable=answerable, sources=row.reference_sources, collection=row.collection,
                                   training=training, added_by=reviewer, added_at=row.reviewed_at, why=note or "")
                session.add(golden)
            session.flush()
            return _review(row), (_golden(golden) if golden else None)

    def golden(self, version: int | None = None) -> list[GoldenRecord]:
        """Version `version` of the reviewed golden set (None: the newest), oldest row first."""
        query = select(GoldenRow).order_by(GoldenRow.version, GoldenRow.id)
        if version is not None:
            query = query.where(GoldenRow.version <= version)
        with self.db.session() as session:
            return [_golden(r) for r in session.scalars(query)]

    def answer_context(self, message_id: str) -> tuple[str, MessageRecord] | None:
        """(the user question before it, the answer) for an assistant message; None if there is no such answer."""
        from assistant.db.conversations import _message

        with self.db.session() as session:
            answer = session.scalars(select(Message).options(selectinload(Message.citations))
                                     .where(Message.id == message_id, Message.role == "assistant")).one_or_none()
            if answer is None:
                return None
            question = session.scalar(
                select(Message.content).where(Message.conversation_id == answer.conversation_id, Message.role == "user",
                                              Message.position < answer.position).order_by(Message.position.desc()).limit(1))
            return (question or "", _message(answer))

    def golden_version(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.max(GoldenRow.version))) or 0)


def _review(row: ReviewItem) -> ReviewRecord:
    return ReviewRecord(row.id, row.message_id, row.reason, row.status, row.collection, row.adapter, row.question,
                        row.answer, row.comment, row.best_score, tuple(row.sources or ()), row.created_at,
                        row.reviewed_by, row.reviewed_at, row.reference,
                        tuple(row.reference_sources) if row.reference_sources is not None else None,
                        row.answerable, bool(row.training), row.note)


def _golden(row: GoldenRow) -> GoldenRecord:
    return GoldenRecord(row.id, row.version, row.review_id, row.question, row.reference, row.answerable,
                        tuple(row.sources or ()), row.collection, bool(row.training), row.added_by, row.added_at,
                        row.why)
