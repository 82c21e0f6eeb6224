"""Conversations and their messages (with citations), always read and written through an owner.

Every method takes the caller's `key_id` and finds only that key's conversations: another
key's conversation id behaves exactly like an unknown one (None / False), so ids cannot be
probed. `admin=True` lifts the owner filter for support and moderation; the API layer passes
`principal.is_admin` and nothing else. Listing still defaults to the caller's own history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from assistant.db.models import CitationRow, Conversation, Message, utcnow
from assistant.db.records import ROLES, CitationRecord, ConversationRecord, MessageRecord

if TYPE_CHECKING:
    from assistant.db.database import Database

TITLE_CHARS = 80  # an untitled conversation takes its first question, cut to this length
_CITATION_FIELDS = [f.name for f in dataclasses.fields(CitationRecord)]


class ConversationStore:
    def __init__(self, database: Database):
        self.db = database

    def create(
        self, key_id: str, title: str = "", collections: Iterable[str] | None = None, adapter: str | None = None
    ) -> ConversationRecord:
        now = utcnow()
        row = Conversation(
            key_id=key_id,
            title=title.strip()[:TITLE_CHARS],
            collections=None if collections is None else list(collections),
            adapter=adapter,
            created_at=now,
            updated_at=now,
        )
        with self.db.session() as session:
            session.add(row)
        return _conversation(row)

    def get(self, conversation_id: str, key_id: str, admin: bool = False) -> ConversationRecord | None:
        with self.db.session() as session:
            row = _owned(session, conversation_id, key_id, admin)
            return _conversation(row) if row else None

    def list(self, key_id: str, limit: int = 50, offset: int = 0, all_keys: bool = False) -> list[ConversationRecord]:
        """Most recently active first. `all_keys` (admins only) lists every key's conversations."""
        query = select(Conversation).order_by(Conversation.updated_at.desc(), Conversation.id)
        if not all_keys:
            query = query.where(Conversation.key_id == key_id)
        with self.db.session() as session:
            rows = session.scalars(query.limit(max(0, limit)).offset(max(0, offset)))
            return [_conversation(row) for row in rows]

    def rename(self, conversation_id: str, key_id: str, title: str, admin: bool = False) -> ConversationRecord | None:
        with self.db.session() as session:
            row = _owned(session, conversation_id, key_id, admin)
            if row is None:
                return None
            row.title = title.strip()[:TITLE_CHARS]
            return _conversation(row)

    def delete(self, conversation_id: str, key_id: str, admin: bool = False) -> bool:
        """Deletes the conversation with its messages, citations and feedback (foreign-key cascade)."""
        with self.db.session() as session:
            if _owned(session, conversation_id, key_id, admin) is None:
                return False
            session.execute(delete(Conversation).where(Conversation.id == conversation_id))
            return True

    def add_message(
        self,
        conversation_id: str,
        key_id: str,
        role: str,
        content: str,
        citations: Iterable[Any] = (),
        *,
        model: str | None = None,
        adapter: str | None = None,
        finish_reason: str | None = None,
        timing: Mapping[str, Any] | None = None,
        refused: bool = False,
        admin: bool = False,
    ) -> MessageRecord | None:
        """Append a message; None when the conversation is not the key's.

        `citations` takes `assistant.answer.Citation` objects (or any dataclass or mapping with
        their fields); missing optional fields are stored as NULL.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        now = utcnow()
        with self.db.session() as session:
            conversation = _owned(session, conversation_id, key_id, admin)
            if conversation is None:
                return None
            last = session.scalar(select(func.max(Message.position)).where(Message.conversation_id == conversation_id))
            message = Message(
                conversation_id=conversation_id,
                position=0 if last is None else last + 1,
                role=role,
                content=content,
                created_at=now,
                model=model,
                adapter=adapter,
                finish_reason=finish_reason,
                timing=None if timing is None else dict(timing),
                refused=refused,
                citations=[CitationRow(**_citation_fields(c)) for c in citations],
            )
            session.add(message)
            conversation.updated_at = now
            if not conversation.title and role == "user":
                conversation.title = " ".join(content.split())[:TITLE_CHARS]
            session.flush()
            return _message(message)

    def history(
        self, conversation_id: str, key_id: str, limit: int | None = None, admin: bool = False
    ) -> list[MessageRecord] | None:
        """Messages oldest first, each with its citations; the last `limit` only when given.

        None when the conversation is not the key's (an empty list is an empty conversation).
        """
        with self.db.session() as session:
            if _owned(session, conversation_id, key_id, admin) is None:
                return None
            query = (
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .options(selectinload(Message.citations))
                .order_by(Message.position.desc())
            )
            if limit is not None:
                query = query.limit(max(0, limit))
            rows = list(session.scalars(query))
            return [_message(row) for row in reversed(rows)]


def _owned(session: Session, conversation_id: str, key_id: str, admin: bool) -> Conversation | None:
    row = session.get(Conversation, conversation_id)
    if row is None or (row.key_id != key_id and not admin):
        return None
    return row


def _citation_fields(citation: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(citation) and not isinstance(citation, type):
        source: Mapping[str, Any] = dataclasses.asdict(citation)
    elif isinstance(citation, Mapping):
        source = citation
    else:
        source = {name: getattr(citation, name) for name in _CITATION_FIELDS if hasattr(citation, name)}
    fields = {name: source[name] for name in _CITATION_FIELDS if name in source}
    missing = {"number", "document"} - fields.keys()
    if missing:
        raise ValueError(f"a citation needs {', '.join(sorted(missing))}")
    fields["heading"] = fields.get("heading") or ""
    fields["snippet"] = fields.get("snippet") or ""
    return fields


def _conversation(row: Conversation) -> ConversationRecord:
    return ConversationRecord(
        id=row.id,
        key_id=row.key_id,
        title=row.title,
        collections=None if row.collections is None else tuple(row.collections),
        adapter=row.adapter,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _citation(row: CitationRow) -> CitationRecord:
    return CitationRecord(**{name: getattr(row, name) for name in _CITATION_FIELDS})


def _message(row: Message) -> MessageRecord:
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        position=row.position,
        role=row.role,
        content=row.content,
        created_at=row.created_at,
        model=row.model,
        adapter=row.adapter,
        finish_reason=row.finish_reason,
        timing=row.timing,
        refused=row.refused,
        citations=tuple(_citation(c) for c in sorted(row.citations, key=lambda c: c.number)),
    )
