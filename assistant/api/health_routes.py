"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get
from litestar.openapi.datastructures import ResponseSpec

from assistant.api.schemas import KEYED, PublicOperation, error_responses
from assistant.api.services import Services
from assistant.auth import Principal


@get("/healthz", operation_id="health", summary="Liveness", description="No auth; never touches the model.",
     operation_class=PublicOperation)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", operation_id="ready", summary="Readiness: model and index loaded",
     description="No auth. 503 (saying what is loading) until the generator and the index are loaded.",
     operation_class=PublicOperation,
     responses={503: ResponseSpec(dict[str, Any], description="Not ready: {ready: false, loading | error}.",
                                  generate_examples=False)})
async def readyz(svc: Services) -> Response:
    body: dict[str, Any] = {"ready": svc.ready, **svc.notes}
    return Response(body, status_code=200 if svc.ready else 503)


@get("/metrics", operation_id="metrics", summary="Prometheus metrics", media_type=MediaType.TEXT,
     description="Request counts and latency by route, tokens generated, time to first token, queue depth. "
     "Needs an API key (any scope).", responses=error_responses(*KEYED))
async def metrics(principal: Principal, svc: Services) -> Response:
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4")
