"""Persistence for the server: API keys, conversations, feedback and jobs (SQLAlchemy 2 + Alembic).

    db = Database(settings.database_url)   # or assembly.database(settings), which also migrates
    db.migrate()                           # idempotent; run at startup
    record, plaintext = db.keys.create("web", "chat", collections=["hr"])
    db.conversations.create(record.id, ...)

Stores return frozen records (`records.py`), never live ORM objects. Everything owned by a key
is filtered by that key; `admin=True` / `all_keys=True` lift the filter and are for callers
that checked the admin scope (see `assistant.auth`).
"""

from assistant.db.conversations import ConversationStore
from assistant.db.database import Database
from assistant.db.feedback import FeedbackStore
from assistant.db.jobs import JobStateError, JobStore
from assistant.db.keys import KeySpecError, KeyStore, hash_key, parse_scopes
from assistant.db.records import (
    JOB_STATUSES,
    ROLES,
    SCOPES,
    ApiKeyRecord,
    CitationRecord,
    ConversationRecord,
    FeedbackRecord,
    JobRecord,
    MessageRecord,
)

__all__ = [
    "JOB_STATUSES",
    "ROLES",
    "SCOPES",
    "ApiKeyRecord",
    "CitationRecord",
    "ConversationRecord",
    "ConversationStore",
    "Database",
    "FeedbackRecord",
    "FeedbackStore",
    "JobRecord",
    "JobStateError",
    "JobStore",
    "KeySpecError",
    "KeyStore",
    "MessageRecord",
    "hash_key",
    "parse_scopes",
]
