"""Every error leaves as JSON `{"error": {"code", "message"}}` with a stable code; never a 500 for a client mistake."""

from __future__ import annotations

import logging
import sqlite3

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import DBAPIError

from assistant.auth import AuthError
from assistant.db.database import StorageError, storage_error as classify_storage_error
from assistant.errors import ApiError
from assistant.inference_queue import QueueFull
from assistant.runtime.base import GeneratorError, UnknownAdapterError
from ingestion.index_store import IndexStoreError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited", 503: "unavailable",
}


def _json(code: str, message: str, status: int, headers: dict[str, str] | None = None, **extra) -> Response:
    body = {"error": {"code": code, "message": message, **extra}}
    return Response(body, status_code=status, headers=headers or {}, media_type=MediaType.JSON)


def api_error(_: Request, exc: ApiError) -> Response:
    return _json(exc.code, exc.message, exc.status, exc.headers)


def auth_error(_: Request, exc: AuthError) -> Response:
    return _json(exc.code, exc.message, exc.status)


def queue_full(_: Request, exc: QueueFull) -> Response:
    return _json("busy", str(exc), 503, {"Retry-After": str(exc.retry_after_s)})


def storage_error(_: Request, exc: StorageError) -> Response:
    # The server is fine but its database cannot serve (locked, read-only, full): 503, never a 500.
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
    return _json(exc.code, exc.message, 503, headers)


def database_error(request: Request, exc: Exception) -> Response:
    """A driver error that reached us unwrapped (the index's docstore uses plain sqlite3): locked, read-only,
    full or damaged is a 503 like StorageError; anything else is a bug (500, logged)."""
    mapped = classify_storage_error(exc)
    return storage_error(request, mapped) if mapped is not None else internal_error(request, exc)


def unknown_adapter(_: Request, exc: UnknownAdapterError) -> Response:
    return _json("unknown_adapter", str(exc), 404)


def generator_error(_: Request, exc: GeneratorError) -> Response:
    return _json("generation_failed", str(exc), 502)


def index_error(_: Request, exc: IndexStoreError) -> Response:
    return _json("invalid_collection", str(exc), 400)


def validation_error(_: Request, exc: ValidationException) -> Response:
    return _json("invalid_request", exc.detail or "the request is not valid", 400, details=exc.extra or [])


# Litestar reports a client that hung up mid-body as a 500 with this detail; it is the client's doing, and nobody
# is left to read the answer: a 400 in the metrics, no error in the log.
_CLIENT_GONE = "client disconnected prematurely"


def http_error(_: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 500 and exc.detail == _CLIENT_GONE:
        log.info("request abandoned: %s", _CLIENT_GONE)
        return _json("client_disconnected", "the client closed the connection before sending the whole body", 400)
    if status >= 500:
        log.error("HTTP %s: %s", status, exc.detail)
    return _json(_HTTP_CODES.get(status, "error" if status < 500 else "internal"), exc.detail or "", status,
                 dict(exc.headers or {}))


def internal_error(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error")
    return _json("internal", "an internal error occurred; it has been logged", 500)


HANDLERS = {
    ApiError: api_error,
    AuthError: auth_error,
    QueueFull: queue_full,
    StorageError: storage_error,
    sqlite3.Error: database_error,
    DBAPIError: database_error,
    UnknownAdapterError: unknown_adapter,
    GeneratorError: generator_error,
    IndexStoreError: index_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    Exception: internal_error,
}
