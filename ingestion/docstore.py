"""SQLite docstore: documents, chunks (text, citation metadata and the vector itself).

It is the index's source of truth. Each document is replaced in one transaction, so a
process killed mid-ingest leaves every document either fully old or fully new; the FAISS
file is a cache rebuilt from the vectors stored here (see `index_store.py`).

We use sqlite3 directly rather than SQLAlchemy: this file is part of the index (like the
FAISS file beside it), always local, and the hot paths are bulk blob reads.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ingestion.chunking import Chunk

SCHEMA_VERSION = "1"  # bump with a migration when the tables change

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    collection TEXT NOT NULL,
    source TEXT NOT NULL,          -- absolute path (or upload name) identifying the document
    name TEXT NOT NULL,            -- file name shown in citations
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    pages INTEGER,
    chunking TEXT NOT NULL,        -- Chunker.signature() the chunks were made with
    chunk_count INTEGER NOT NULL,
    ingested_at REAL NOT NULL,
    UNIQUE (collection, source)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    collection TEXT NOT NULL,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    context TEXT NOT NULL,
    page INTEGER,                  -- 1-based page the chunk starts on (NULL: no pages)
    page_end INTEGER,              -- page it ends on
    heading TEXT NOT NULL,
    kind TEXT NOT NULL,
    token_count INTEGER NOT NULL,
    vector BLOB NOT NULL           -- float32 little-endian, L2-normalised
);
CREATE INDEX IF NOT EXISTS chunks_collection ON chunks(collection, id);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
"""


@dataclass
class DocumentRow:
    id: int
    collection: str
    source: str
    name: str
    sha256: str
    size_bytes: int
    pages: int | None
    chunking: str
    chunk_count: int
    ingested_at: float


@dataclass
class ChunkRow:
    id: int
    document_id: int
    collection: str
    document: str  # file name
    source: str
    ord: int
    text: str
    context: str
    page: int | None
    page_end: int | None
    heading: str
    kind: str


class DocStore:
    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        # `readonly` means "never create or migrate": a read-only SQLite URI cannot open a WAL
        # database whose -shm file is absent, so readers use a normal connection and only read.
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            self.db.commit()
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=10000")

    def close(self) -> None:
        self.db.close()

    # --- meta -----------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self, collection: str) -> int:
        """Bumped in the same transaction as every change to a collection's chunks."""
        return int(self.get_meta(f"generation:{collection}") or 0)

    def _bump(self, collection: str) -> None:
        self.db.execute(
            "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (f"generation:{collection}",),
        )

    def next_chunk_id(self) -> int:
        """The id the next chunk will get. Chunk ids only grow, never reused after a delete (SQLite's own rowid
        choice reuses a deleted top id): a FAISS file whose largest id is M holds every chunk of id <= M that
        still exists, so a later refresh adds the ids > M and removes what is gone, without a rebuild."""
        stored = self.get_meta("next_chunk_id")
        if stored is not None:
            return int(stored)
        # First use on an index written before the counter: the largest id + 1. An id deleted above it may sit
        # in an older FAISS file, but such files have no `next_id` in their sidecar and are rebuilt, not patched.
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0])

    def _take_chunk_ids(self, count: int) -> int:
        """Reserve `count` ids (inside the caller's transaction); returns the first."""
        first = self.next_chunk_id()
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('next_chunk_id', ?)", (str(first + count),))
        return first

    # --- documents ------------------------------------------------------------
    def get_document(self, collection: str, source: str) -> DocumentRow | None:
        row = self.db.execute(
            "SELECT * FROM documents WHERE collection=? AND source=?", (collection, source)
        ).fetchone()
        return DocumentRow(*row) if row else None

    def list_documents(self, collection: str | None = None) -> list[DocumentRow]:
        if collection is None:
            rows = self.db.execute("SELECT * FROM documents ORDER BY collection, name").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM documents WHERE collection=? ORDER BY name", (collection,)).fetchall()
        return [DocumentRow(*r) for r in rows]

    def collections(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT collection FROM documents ORDER BY 1")]

    def replace_document(
        self,
        collection: str,
        source: str,
        name: str,
        sha256: str,
        size_bytes: int,
        pages: int | None,
        chunking: str,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
    ) -> int:
        """Atomically swap a document's chunks for new ones; returns the document id."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        with self.db:
            self.db.execute("DELETE FROM documents WHERE collection=? AND source=?", (collection, source))
            cursor = self.db.execute(
                "INSERT INTO documents (collection, source, name, sha256, size_bytes, pages, chunking, chunk_count,"
                " ingested_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (collection, source, name, sha256, size_bytes, pages, chunking, len(chunks), time.time()),
            )
            doc_id = cursor.lastrowid
            first = self._take_chunk_ids(len(chunks))
            self.db.executemany(
                "INSERT INTO chunks (id, document_id, collection, ord, text, context, page, page_end, heading, kind,"
                " token_count, vector) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (first + i, doc_id, collection, i, c.text, c.context, c.page, c.page_end, c.heading, c.kind,
                     c.token_count, v.tobytes())
                    for i, (c, v) in enumerate(zip(chunks, vectors))
                ],
            )
            self._bump(collection)
        return doc_id

    def delete_document(self, document_id: int) -> bool:
        with self.db:
            row = self.db.execute("SELECT collection FROM documents WHERE id=?", (document_id,)).fetchone()
            if row is None:
                return False
            self.db.execute("DELETE FROM documents WHERE id=?", (document_id,))
            self._bump(row[0])
        return True

    # --- chunks ---------------------------------------------------------------
    def vectors(self, collection: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids int64, vectors float32 (n, dim)) of a collection, in id order."""
        return self.vectors_from(collection, dim, 0)

    def chunk_ids(self, collection: str) -> np.ndarray:
        """A collection's chunk ids (int64), in id order."""
        rows = self.db.execute("SELECT id FROM chunks WHERE collection=? ORDER BY id", (collection,)).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def vectors_from(self, collection: str, dim: int, first_id: int) -> tuple[np.ndarray, np.ndarray]:
        """As `vectors`, for the chunks of id >= `first_id` only (what was added since a FAISS file was built)."""
        rows = self.db.execute("SELECT id, vector FROM chunks WHERE collection=? AND id>=? ORDER BY id",
                               (collection, first_id)).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), dim)
        return ids, matrix.astype(np.float32, copy=False)

    def texts(self, collection: str) -> Iterator[tuple[int, str]]:
        """(chunk id, context + text) of a collection, in id order: the BM25 corpus."""
        for chunk_id, context, text in self.db.execute(
            "SELECT id, context, text FROM chunks WHERE collection=? ORDER BY id", (collection,)
        ):
            yield chunk_id, f"{context}\n{text}" if context else text

    def document_headers(self, collection: str) -> tuple[dict[int, str], dict[int, int]]:
        """({document id: file name + its header}, {chunk id: document id}) of a collection.

        The header is the part before the heading path in the document's first chunk's context
        (`Chunker` writes "title | issuer | form | period > heading"); it is stored in every chunk, not apart.
        """
        headers: dict[int, str] = {}
        owners: dict[int, int] = {}
        for chunk_id, doc_id, name, ord_, context in self.db.execute(
            "SELECT c.id, c.document_id, d.name, c.ord, c.context FROM chunks c JOIN documents d ON d.id = c.document_id"
            " WHERE c.collection=? ORDER BY c.document_id, c.ord",
            (collection,),
        ):
            owners[chunk_id] = doc_id
            if doc_id not in headers:
                headers[doc_id] = f"{name} {context.split(' > ')[0]}"
        return headers, owners

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRow]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, c.document_id, c.collection, d.name, d.source, c.ord, c.text, c.context, c.page, c.page_end,"
            f" c.heading, c.kind FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
            [int(i) for i in ids],
        ).fetchall()
        return {r[0]: ChunkRow(*r) for r in rows}

    def collection_chunks(self, collection: str) -> list[ChunkRow]:
        """Every chunk of a collection in document then reading order."""
        rows = self.db.execute(
            "SELECT c.id, c.document_id, c.collection, d.name, d.source, c.ord, c.text, c.context, c.page, c.page_end,"
            " c.heading, c.kind FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.collection=?"
            " ORDER BY d.name, c.ord",
            (collection,),
        ).fetchall()
        return [ChunkRow(*r) for r in rows]

    def unit_chunks(self, chunk_id: int, radius: int = 40) -> list[ChunkRow]:
        """The chunks sharing `chunk_id`'s page (every chunk that starts on or spans it), or, in formats without
        pages, the chunks of its document within `radius` positions of it (a long document is never read whole),
        in reading order; [] when the chunk is gone."""
        rows = self.db.execute(
            "SELECT c.id, c.document_id, c.collection, d.name, d.source, c.ord, c.text, c.context, c.page, c.page_end,"
            " c.heading, c.kind FROM chunks h JOIN chunks c ON c.document_id = h.document_id"
            " JOIN documents d ON d.id = c.document_id WHERE h.id = ? AND ("
            " (h.page IS NOT NULL AND c.page <= h.page AND COALESCE(c.page_end, c.page) >= h.page)"
            " OR (h.page IS NULL AND c.page IS NULL AND c.ord BETWEEN h.ord - ? AND h.ord + ?)) ORDER BY c.ord",
            (int(chunk_id), radius, radius),
        ).fetchall()
        return [ChunkRow(*r) for r in rows]

    def chunk_ids_of_documents(self, collection: str, names: Sequence[str]) -> np.ndarray:
        marks = ",".join("?" * len(names))
        rows = self.db.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.collection=? AND (d.name IN ({marks}) OR d.source IN ({marks}))",
            [collection, *names, *names],
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)
