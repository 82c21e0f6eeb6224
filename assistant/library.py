"""What a key may browse: its collections with their document counts, and the original files behind citations.

Originals: an upload is kept by the job runner at `<home>/documents/<collection>/<name>` and ingested from
there; `ragtune ingest` indexes files where they lie. The docstore records each document's path and the
SHA-256 of the bytes that were ingested, so a file is served only while its bytes are still exactly those
(read once, hashed, then sent: no window for a swap). A moved, deleted or since-edited original is
404 `file_unavailable`, as is any document ingested from a source that was not a file.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.auth import Principal, allowed_collections, authorize
from assistant.errors import ApiError, not_found
from ingestion.index_store import IndexStore

MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
}


@dataclass(frozen=True)
class OriginalFile:
    name: str  # the file name citations show
    media_type: str
    content: bytes


class Library:
    def __init__(self, store: IndexStore, max_file_bytes: int):
        self.store = store
        self.max_file_bytes = max_file_bytes  # larger files were never ingested; refuse to read one into memory

    def collections(self, principal: Principal) -> list[dict[str, Any]]:
        """The collections the key may read, with their document counts; a collection the key lists that has
        no document yet is included with 0 (so a client can offer it as an upload target)."""
        authorize(principal, "chat")
        existing = self.store.docstore.collections()
        names = set(allowed_collections(principal, None, existing))
        if not principal.all_collections:
            names |= set(principal.collections)
        counts = Counter(d.collection for d in self.store.docstore.list_documents())
        return [{"name": name, "documents": counts.get(name, 0)} for name in sorted(names)]

    def original(self, principal: Principal, document_id: int) -> OriginalFile:
        """The ingested bytes of a document the key may read; 404 `document_not_found` for any other id."""
        authorize(principal, "chat")
        doc = next((d for d in self.store.docstore.list_documents() if d.id == document_id), None)
        if doc is None or not (principal.all_collections or doc.collection in principal.collections):
            raise not_found("document", document_id)  # another collection's document looks like a missing one
        content = _read_if_unchanged(Path(doc.source), doc.size_bytes, doc.sha256, self.max_file_bytes)
        if content is None:
            raise ApiError("file_unavailable", f"the original file of document {document_id} ({doc.name}) is not "
                           "stored any more (moved, deleted or changed since it was ingested)", 404)
        media_type = MEDIA_TYPES.get(Path(doc.name).suffix.lower(), "application/octet-stream")
        return OriginalFile(doc.name, media_type, content)


def _read_if_unchanged(path: Path, size_bytes: int, sha256: str, max_bytes: int) -> bytes | None:
    try:
        if not path.is_file() or path.stat().st_size != size_bytes or size_bytes > max_bytes:
            return None
        content = path.read_bytes()
    except OSError:
        return None
    return content if hashlib.sha256(content).hexdigest() == sha256 else None
