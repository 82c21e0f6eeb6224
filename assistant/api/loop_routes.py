"""Admin (scope `admin`): the improvement loop. The review queue and its golden set, the staged rollout with
its live readout, the drift watch, and retraining (a background job)."""

from __future__ import annotations

from typing import Any

import anyio
from litestar import get, post
from litestar.params import Parameter

from assistant.api.loop_schemas import RetrainBody, ReviewAcceptBody, ReviewRejectBody, RolloutBody
from assistant.api.schemas import KEYED, error_responses
from assistant.api.conversation_routes import MAX_OFFSET
from assistant.api.services import Services
from assistant.auth import Principal, authorize
from assistant.errors import ApiError
from assistant.rollout_service import RolloutService


def reviews(svc: Services):
    if svc.loop is None:
        svc.conversations  # noqa: B018 - 503 not_ready while the models load
        raise ApiError("not_ready", "the improvement loop is not assembled", 503, {"Retry-After": "5"})
    return svc.loop.reviews


def rollouts(svc: Services) -> RolloutService:
    from assistant import assembly

    return RolloutService(svc.settings, svc.db, lambda: svc.chat, assembly.rollout_state(svc.settings))


@get("/v1/reviews", operation_id="listReviews", summary="The review queue, newest first, with counts per status",
     description="Admin. `status`: open (default), accepted, rejected or all. Texts are PII-masked.",
     responses=error_responses(*KEYED, 400, 503))
async def list_reviews(principal: Principal, svc: Services, status: str = Parameter(default="open", max_length=16),
                       limit: int = Parameter(default=50, ge=1, le=500),
                       offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: reviews(svc).list(principal, status, limit, offset))


@get("/v1/reviews/{item_id:str}", operation_id="getReview", summary="One review item",
     description="Admin. The masked question, answer and comment, why it was queued, and the decision if any.",
     responses=error_responses(*KEYED, 404, 503))
async def get_review(item_id: str, principal: Principal, svc: Services) -> dict[str, Any]:
    return reviews(svc).show(principal, item_id)


@post("/v1/reviews/{item_id:str}/accept", operation_id="acceptReview", status_code=200,
      summary="Accept: the item becomes a row of the next golden-set version (and optionally a training row)",
      description="Admin. 409 `already_reviewed` when it was decided before.",
      responses=error_responses(*KEYED, 400, 404, 409, 413, 503))
async def accept_review(item_id: str, data: ReviewAcceptBody, principal: Principal, svc: Services) -> dict[str, Any]:
    sources = [s.model_dump() for s in data.sources]
    return await anyio.to_thread.run_sync(lambda: reviews(svc).accept(
        principal, item_id, data.reference, sources, data.answerable, data.training, data.note))


@post("/v1/reviews/{item_id:str}/reject", operation_id="rejectReview", status_code=200,
      summary="Reject: no golden row", description="Admin. The note says why; 409 `already_reviewed` when decided before.",
      responses=error_responses(*KEYED, 400, 404, 409, 413, 503))
async def reject_review(item_id: str, data: ReviewRejectBody, principal: Principal, svc: Services) -> dict[str, Any]:
    return reviews(svc).reject(principal, item_id, data.note)


@get("/v1/golden", operation_id="reviewedGolden", summary="The reviewed golden set (rows with who/when/why)",
     description="Admin. `version` 0 or omitted: the newest.", responses=error_responses(*KEYED, 400, 503))
async def reviewed_golden(principal: Principal, svc: Services,
                          version: int = Parameter(default=0, ge=0, le=MAX_OFFSET)) -> dict[str, Any]:
    return reviews(svc).golden(principal, version or None)


@get("/v1/rollout", operation_id="getRollout", summary="The running rollout and its live per-arm readout",
     description="Admin. Per arm: answers, thumbs-up, refusal and rail-action rates with intervals, latency; the "
     "candidate-minus-control differences and a 'significant / not yet' verdict. `rollout` is null when none runs.",
     responses=error_responses(*KEYED, 503))
async def get_rollout(principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: rollouts(svc).status(principal))


@post("/v1/rollout", operation_id="startRollout", status_code=201, summary="Send a share of traffic to a candidate",
      description="Admin. 409 `rollout_conflict` while another runs.",
      responses=error_responses(*KEYED, 400, 404, 409, 413, 503))
async def start_rollout(data: RolloutBody, principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: rollouts(svc).start(principal, data.candidate, data.share))


@post("/v1/rollout/promote", operation_id="promoteRollout", status_code=200,
      summary="Promote the rollout's candidate and end the rollout",
      description="Admin. Promoted through the registry as POST /v1/adapters/{name}/promote does; 409 `no_rollout`.",
      responses=error_responses(*KEYED, 404, 409, 503))
async def promote_rollout(principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: rollouts(svc).promote(principal))


@post("/v1/rollout/stop", operation_id="stopRollout", status_code=200,
      summary="End the rollout: every conversation answers with the control again",
      description="Admin. The rollback of a rollout; its last figures stay in the history. 409 `no_rollout`.",
      responses=error_responses(*KEYED, 409, 503))
async def stop_rollout(principal: Principal, svc: Services) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: rollouts(svc).stop(principal))


@get("/v1/drift", operation_id="getDrift", summary="Drift watch: per collection, latest figures and their history",
     description="Admin. Recent questions against the training and golden questions (two-sample test p-value, alert), "
     "best retrieval score, refusal rate and unanswered share; the same figures are on /metrics.",
     responses=error_responses(*KEYED, 503))
async def get_drift(principal: Principal, svc: Services) -> dict[str, Any]:
    authorize(principal, "admin")
    reviews(svc)  # 503 while loading
    drift = svc.loop.drift
    return drift.snapshot() if drift is not None else {"reference_questions": 0, "collections": {},
                                                       "message": "no reference questions (golden sets or a dataset)"}


@post("/v1/retrain", operation_id="retrain", status_code=202,
      summary="Retrain: synthetic data + accepted reviews → next adapter version → gate, as a background job",
      description="Admin. Poll GET /v1/jobs/{id}; the job's report holds the gate's decision.",
      responses=error_responses(*KEYED, 400, 413, 503))
async def retrain(data: RetrainBody, principal: Principal, svc: Services) -> dict[str, Any]:
    authorize(principal, "admin")
    return await anyio.to_thread.run_sync(lambda: svc.jobs.submit_retrain(principal, data.eval_limit))


ROUTES = [list_reviews, get_review, accept_review, reject_review, reviewed_golden, get_rollout, start_rollout,
          promote_rollout, stop_rollout, get_drift, retrain]
