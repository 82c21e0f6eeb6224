"""Admin (scope `admin`): API keys, adapter versions (promote, roll back) and evaluation scorecards."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import Response, delete, get, post

from assistant.admin_service import AdminService
from assistant.api.schemas import KEYED, KeyBody, PromoteBody, error_responses
from assistant.api.services import Services
from assistant.auth import Principal
from assistant.eval_runs import EvalRuns

# A scorecard is one self-contained page (inline CSS and SVG, no script): shown as-is, never able to run code here.
_SCORECARD_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-cache",
}


def admin(svc: Services) -> AdminService:
    return AdminService(svc.settings, svc.db, lambda: svc.chat)


@get("/v1/keys", operation_id="listKeys", summary="Every API key (never the keys themselves)",
     description="Admin. Revoked keys included, with `revoked_at`.",
     responses=error_responses(*KEYED))
async def list_keys(principal: Principal, svc: Services) -> dict[str, Any]:
    return {"keys": admin(svc).keys(principal)}


@post("/v1/keys", operation_id="createKey", status_code=201, summary="Create an API key; its plaintext is shown once",
      description="Admin. 400 `invalid_key_spec` for unknown scopes, collections with an admin key, an origin that is "
      "not exact (scheme://host[:port]) or allowed_origins on a key with more than the `chat` scope.",
     responses=error_responses(*KEYED, 400, 413))
async def create_key(data: KeyBody, principal: Principal, svc: Services) -> dict[str, Any]:
    record, plaintext = admin(svc).create_key(principal, data.name, list(data.scopes), data.collections,
                                              data.all_collections, data.allowed_origins)
    return {"key": record, "api_key": plaintext}


@delete("/v1/keys/{key_id:str}", operation_id="revokeKey", status_code=200, summary="Revoke an API key, at once",
        description="Admin. The key's next request is refused (401 `invalid_api_key`). Returns the revoked record.",
     responses=error_responses(*KEYED, 404))
async def revoke_key(key_id: str, principal: Principal, svc: Services) -> dict[str, Any]:
    return {"key": admin(svc).revoke_key(principal, key_id)}


@get("/v1/adapters", operation_id="listAdapters", summary="Adapter versions with training metrics and scorecards",
     description="Admin. One entry per NAME@vN in the registry; `scorecards` is the `eval` record of its metadata.",
     responses=error_responses(*KEYED))
async def list_adapters(principal: Principal, svc: Services) -> dict[str, Any]:
    return {"adapters": admin(svc).adapters(principal)}


@post("/v1/adapters/{name:str}/promote", operation_id="promoteAdapter", status_code=200,
      summary="Promote an adapter version: it answers from the next request on",
      description="Admin. Recorded in the registry and applied to the running server (`applied`). With an "
      "OpenAI-compatible generator the engine must already serve the version as NAME@vN (409 "
      "`adapter_not_served` otherwise; nothing changes).",
     responses=error_responses(*KEYED, 400, 404, 409, 413, 503))
async def promote_adapter(name: str, data: PromoteBody, principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: admin(svc).promote(principal, name, data.version))  # may load weights


@post("/v1/adapters/{name:str}/rollback", operation_id="rollbackAdapter", status_code=200,
      summary="Roll back to the version promoted before the current one",
      description="Admin. 409 `no_earlier_version` when there is none. Applied like a promotion.",
     responses=error_responses(*KEYED, 404, 409, 503))
async def rollback_adapter(name: str, principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: admin(svc).rollback(principal, name))


@get("/v1/evals", operation_id="listEvalRuns", summary="Evaluation runs, newest first, with their summaries",
     description="Admin. Runs under HOME/evals (where `ragtune eval` writes by default).",
     responses=error_responses(*KEYED))
async def list_evals(principal: Principal, svc: Services) -> dict[str, Any]:
    return {"runs": EvalRuns(svc.settings.evals_dir).list(principal)}


@get("/v1/evals/{run_id:str}/scorecard", operation_id="getScorecard", media_type="text/html",
     summary="A run's HTML scorecard (`latest` = the newest run)", description="Admin. A self-contained page.",
     responses=error_responses(*KEYED, 404))
async def scorecard(run_id: str, principal: Principal, svc: Services) -> Response:
    html = EvalRuns(svc.settings.evals_dir).scorecard(principal, run_id)
    return Response(html, media_type="text/html", headers=_SCORECARD_HEADERS)
