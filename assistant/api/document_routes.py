"""Documents: upload (a background ingestion job), list, delete; and job status."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body

from assistant.api.schemas import KEYED, UploadForm, error_responses
from assistant.api.services import Services
from assistant.auth import Principal
from assistant.errors import ApiError


@post(
    "/v1/documents",
    operation_id="uploadDocuments",
    summary="Upload documents for ingestion",
    description="Multipart form: one or more `files` and an optional `collection`. Returns 202 with a job id; poll "
    "GET /v1/jobs/{id}. A file with the same name in the same collection replaces the earlier one.",
    status_code=202,
    responses=error_responses(400, *KEYED, 413, 415),
    # The body limit (server.upload_max_mb) comes from the per-app router in `assistant.app`.
)
async def upload(
    data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    principal: Principal,
    svc: Services,
) -> dict[str, Any]:
    limit = int(svc.settings.server.upload_max_mb * 1024 * 1024)
    files = [(item.filename or "", await item.read()) for item in data.files]
    if sum(len(content) for _, content in files) > limit:
        raise ApiError("payload_too_large", f"uploads are limited to {svc.settings.server.upload_max_mb:g} MiB", 413)
    collection = data.collection
    job = await anyio.to_thread.run_sync(lambda: svc.jobs.submit(principal, collection, files))  # writes the files
    return {"job_id": job.id, "status": job.status, "collection": job.collection, "files": job.inputs["files"]}


@get("/v1/documents", operation_id="listDocuments", summary="Documents in the collections the key may read",
     description="Optionally filtered by `collection`.", responses=error_responses(400, *KEYED, 503))
async def list_documents(principal: Principal, svc: Services, collection: str | None = None) -> dict[str, Any]:
    return {"documents": svc.conversations.documents(principal, collection)}


@delete("/v1/documents/{document_id:int}", operation_id="deleteDocument", summary="Remove a document and its chunks",
        description="Needs the `ingest` scope; the index is rebuilt for its collection.", status_code=204,
        responses=error_responses(*KEYED, 404, 503))
async def delete_document(document_id: int, principal: Principal, svc: Services) -> None:
    await anyio.to_thread.run_sync(lambda: svc.conversations.delete_document(principal, document_id))


@get("/v1/jobs/{job_id:str}", operation_id="getJob", summary="An ingestion job's status and report",
     description="status: queued | running | done | failed; `report` lists every file with its outcome.",
     responses=error_responses(*KEYED, 404))
async def get_job(job_id: str, principal: Principal, svc: Services) -> dict[str, Any]:
    return svc.jobs.get(principal, job_id).to_dict()
