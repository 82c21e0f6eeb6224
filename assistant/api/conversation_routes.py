"""Conversation history and feedback on answers."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import delete, get, post
from litestar.params import Parameter

from assistant.api.schemas import KEYED, FeedbackBody, error_responses
from assistant.api.services import Services
from assistant.auth import Principal

# SQLite integers are 64-bit: a larger OFFSET raised OverflowError (a 500, found by the schema fuzzer).
MAX_OFFSET = 1_000_000_000


@get("/v1/conversations", operation_id="listConversations", summary="The key's conversations, newest first",
     description="Paged with `limit` (1–200) and `offset`.", responses=error_responses(400, *KEYED, 503))
async def list_conversations(
    principal: Principal, svc: Services,
    limit: int = Parameter(default=50, ge=1, le=200),
    offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
) -> dict[str, Any]:
    return {"conversations": svc.conversations.conversations(principal, limit, offset)}


@get("/v1/conversations/{conversation_id:str}", operation_id="getConversation",
     summary="One conversation with its messages and citations", description="404 for another key's conversation.",
     responses=error_responses(*KEYED, 404, 503))
async def get_conversation(conversation_id: str, principal: Principal, svc: Services) -> dict[str, Any]:
    return svc.conversations.conversation(principal, conversation_id)


@delete("/v1/conversations/{conversation_id:str}", operation_id="deleteConversation",
        summary="Delete a conversation", description="Removes its messages, citations and feedback.", status_code=204,
        responses=error_responses(*KEYED, 404, 503))
async def delete_conversation(conversation_id: str, principal: Principal, svc: Services) -> None:
    svc.conversations.delete_conversation(principal, conversation_id)


@post("/v1/messages/{message_id:str}/feedback", operation_id="sendFeedback", status_code=200,
      summary="Thumbs up or down on an answer, with an optional comment",
      description="Kept for evaluation (thumbs-down with a comment become candidate golden questions). Voting again "
      "replaces the earlier vote.", responses=error_responses(400, *KEYED, 404, 413, 503))
async def feedback(message_id: str, data: FeedbackBody, principal: Principal, svc: Services) -> dict[str, Any]:
    return await asyncio.to_thread(svc.conversations.feedback, principal, message_id, data.value, data.comment)
