"""Plain, immutable copies of database rows: what the stores hand to the rest of the program.

They outlive the session that read them (safe in async handlers and worker threads), never
carry a key's hash, and turn into JSON-ready dicts with `to_dict()`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

# admin implies the others and every collection (see auth.py); eval = closed-book answers (`retrieval: false`),
# which skip the documents and the grounding rail: for evaluation keys, never chat or widget keys.
SCOPES = ("chat", "ingest", "eval", "admin")
ROLES = ("user", "assistant")
JOB_STATUSES = ("queued", "running", "done", "failed")


class _Record:
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class ApiKeyRecord(_Record):
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...]
    all_collections: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    allowed_origins: tuple[str, ...] = ()  # browser origins that may use the key (see assistant/origins.py)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class ConversationRecord(_Record):
    id: str
    key_id: str
    title: str
    collections: tuple[str, ...] | None  # None = whatever the key may read
    adapter: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CitationRecord(_Record):
    number: int
    document: str
    page: int | None
    page_end: int | None
    heading: str
    chunk_id: int | None
    collection: str | None
    snippet: str
    score: float | None
    dense_score: float | None


@dataclass(frozen=True)
class MessageRecord(_Record):
    id: str
    conversation_id: str
    position: int  # 0-based order within the conversation
    role: str
    content: str
    created_at: datetime
    model: str | None
    adapter: str | None
    finish_reason: str | None
    timing: dict[str, Any] | None
    refused: bool
    citations: tuple[CitationRecord, ...]


@dataclass(frozen=True)
class FeedbackRecord(_Record):
    id: str
    message_id: str
    key_id: str
    rating: int  # +1 or -1
    comment: str | None
    created_at: datetime  # of the latest vote: setting again replaces the old one


@dataclass(frozen=True)
class JobRecord(_Record):
    id: str
    key_id: str
    kind: str
    status: str  # queued | running | done | failed
    collection: str
    inputs: dict[str, Any]
    report: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
