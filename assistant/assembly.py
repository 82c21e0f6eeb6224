"""Builds ragtune's components from one Settings object; the only place that does.

Commands and (later) the server call these instead of constructing parts themselves, so a
profile or environment override reaches every part the same way.
"""

from __future__ import annotations

from assistant.db import Database
from assistant.runtime.base import Generator
from assistant.runtime.factory import build_generator
from assistant.settings import Settings
from ingestion.embedder import Embedder, build_embedder
from ingestion.index_store import IndexStore
from ingestion.pipeline import IngestJob
from ingestion.retriever import Retriever


def embedder(settings: Settings) -> Embedder:
    return build_embedder(settings.embedder)


def index_store(settings: Settings, readonly: bool = False, embed: Embedder | None = None) -> IndexStore:
    return IndexStore(settings.index_dir, embed or embedder(settings), settings.index, readonly=readonly)


def ingest_job(settings: Settings) -> IngestJob:
    embed = embedder(settings)
    return IngestJob(settings, embed, index_store(settings, embed=embed))


def retriever(settings: Settings) -> Retriever:
    return Retriever(index_store(settings, readonly=True), settings.retrieval)


def database(settings: Settings, migrate: bool = True) -> Database:
    """The server's database (keys, conversations, feedback, jobs), migrated to the current schema."""
    db = Database(settings.database_url)
    if migrate:
        db.migrate()
    return db


def generator(settings: Settings) -> Generator:
    """The answer-writing model (loads weights for the transformers backend: seconds once converted)."""
    return build_generator(settings)
