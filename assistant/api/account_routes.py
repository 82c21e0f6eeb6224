"""Who am I, and what may I browse: the key's identity, its collections, original files, its ingestion jobs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import anyio
from litestar import Response, get

from assistant.api.schemas import KEYED, error_responses
from assistant.api.services import Services
from assistant.auth import Principal
from assistant.db import SCOPES
from assistant.library import Library

# An original file is shown as-is; HTML and SVG-bearing documents must not run script under this origin.
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache"}
_SANDBOX = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def library(svc: Services) -> Library:
    return Library(svc.conversations.store, int(svc.settings.ingest.max_file_mb * 1024 * 1024))


@get("/v1/me", operation_id="whoAmI", summary="The calling key: name, scopes and the collections it may read",
     description="Any valid key. `scopes` are the effective ones (an admin key holds all three); `all_collections` "
     "means every collection, present and future.",
     responses=error_responses(*KEYED))
async def me(principal: Principal) -> dict[str, Any]:
    return {"key_id": principal.key_id, "name": principal.name,
            "scopes": [s for s in SCOPES if principal.has(s)], "collections": list(principal.collections),
            "all_collections": principal.all_collections, "is_admin": principal.is_admin}


@get("/v1/collections", operation_id="listCollections", summary="Collections the key may read, with document counts",
     description="Needs the `chat` scope. A collection the key lists that holds no document yet is included with 0.",
     responses=error_responses(*KEYED, 503))
async def collections(principal: Principal, svc: Services) -> dict[str, Any]:
    return {"collections": library(svc).collections(principal)}


@get("/v1/documents/{document_id:int}/file", operation_id="getDocumentFile", media_type="application/octet-stream",
     summary="The original file of a document (what citations point to)",
     description="Needs the `chat` scope and read access to the document's collection. Sent with its content type "
     "and `Content-Disposition: inline`; 404 `file_unavailable` when the original is no longer stored unchanged "
     "(uploads are kept by the server; files ingested from a path are served while they are unchanged there).",
     responses=error_responses(*KEYED, 404, 503))
async def document_file(document_id: int, principal: Principal, svc: Services) -> Response:
    found = await anyio.to_thread.run_sync(lambda: library(svc).original(principal, document_id))  # reads + hashes
    headers = {**_FILE_HEADERS, "Content-Disposition": _inline(found.name)}
    if not found.media_type.startswith("application/pdf"):  # browsers' PDF viewers refuse a sandboxed document
        headers["Content-Security-Policy"] = _SANDBOX
    return Response(found.content, media_type=found.media_type, headers=headers)


@get("/v1/jobs", operation_id="listJobs", summary="The key's ingestion jobs, newest first (admins: everyone's)",
     description="Needs the `ingest` scope. The 50 newest, each shaped like GET /v1/jobs/{id}.",
     responses=error_responses(*KEYED))
async def list_jobs(principal: Principal, svc: Services) -> dict[str, Any]:
    return {"jobs": [job.to_dict() for job in svc.jobs.list(principal, limit=50)]}


def _inline(name: str) -> str:
    """RFC 6266: an ASCII fallback name plus the exact UTF-8 one; quotes and controls never reach the header."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "document"
    return f"inline; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
