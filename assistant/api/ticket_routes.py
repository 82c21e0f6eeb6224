"""POST /v1/tickets/draft: a reply to a support ticket, drafted from the documents (the widget's agent mode)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from litestar import post

from assistant.api.schemas import KEYED, TicketBody, error_responses
from assistant.api.services import Services
from assistant.auth import Principal


@post(
    "/v1/tickets/draft",
    operation_id="draftTicketReply",
    summary="Draft a reply to a support ticket, with citations",
    description="Needs the `chat` scope. The ticket goes through the same rails, retrieval and model as /v1/chat "
    "(attacks blocked, PII masked, ungrounded drafts replaced) and nothing is stored as a conversation. A long "
    "ticket is cut to half of the model's prompt budget. Returns {draft, refused, citations, sources (every passage the model was shown), guardrails, request_id}.",
    status_code=200,
    responses=error_responses(*KEYED, 400, 404, 413, 502, 503),
)
async def draft(data: TicketBody, principal: Principal, svc: Services) -> dict[str, Any]:
    turn, answer = await svc.conversations.draft_reply(principal, data.ticket, data.collections, data.adapter)
    svc.metrics.observe_answer(answer)
    return {"draft": answer.text, "refused": answer.refused, "citations": [asdict(c) for c in answer.citations],
            "sources": [asdict(c) for c in answer.sources], "guardrails": answer.guardrails, "request_id": turn.request_id, "adapter": answer.adapter}
