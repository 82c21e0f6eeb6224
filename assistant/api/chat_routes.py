"""POST /v1/chat (JSON or Server-Sent Events) and POST /v1/search."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator

import anyio
from litestar import Response, post
from litestar.response.sse import ServerSentEventMessage

from assistant.answer import FinalEvent, TokenEvent
from assistant.api.event_stream import EventStream
from assistant.api.schemas import KEYED, ChatBody, EventStreamOperation, SearchBody, error_responses
from assistant.api.services import Services
from assistant.auth import Principal
from assistant.errors import ApiError
from assistant.runtime.base import GeneratorError

log = logging.getLogger(__name__)


def final_payload(turn: Any, event: FinalEvent) -> dict[str, Any]:
    answer = event.answer.to_dict()
    answer["usage"] = {"prompt_tokens": answer.pop("prompt_tokens"), "completion_tokens": answer.pop("completion_tokens")}
    return {"conversation_id": turn.conversation_id or None, "message_id": event.message_id,
            "request_id": turn.request_id, "answer": answer}


def stream_error(exc: Exception) -> dict[str, str]:
    """{code, message} for a failure after the response head was sent (reported in-band)."""
    if isinstance(exc, GeneratorError):
        return {"code": "generation_failed", "message": str(exc)}
    if isinstance(getattr(exc, "code", None), str):  # ApiError, AuthError: already client-safe
        return {"code": exc.code, "message": getattr(exc, "message", str(exc))}  # type: ignore[attr-defined]
    log.exception("answer stream failed")
    return {"code": "internal", "message": "an internal error occurred; it has been logged"}


async def first_event(events: AsyncIterator[Any]) -> Any:
    """Start the stream before the response head: queue-full or a bad adapter still get a real status code."""
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        raise ApiError("no_answer", "the answer stream ended without an answer", 502) from None


async def last_event(first: Any, events: AsyncIterator[Any]) -> Any:
    """The final event of a stream whose first event was already taken (JSON answers)."""
    final = first
    async for final in events:
        pass
    return final


@post(
    "/v1/chat",
    operation_id="chat",
    summary="Ask a question, grounded in the documents",
    description="Creates or continues a conversation. Returns the answer with structured citations as JSON, or, with "
    "`stream: true`, Server-Sent Events: `token` events ({text}) as the output rails release the text, then one "
    "`final` event ({conversation_id, message_id, request_id, answer}); an `error` event ({code, message}) if generation "
    "fails midway. The final answer's text starts with all the token text; `answer.replaced` says the rails withdrew "
    "the rest (their message follows what was released). `retrieval: false` needs the `eval` scope.",
    status_code=200,
    operation_class=EventStreamOperation,
    responses=error_responses(400, *KEYED, 404, 413, 502, 503),
)
async def chat(data: ChatBody, principal: Principal, svc: Services) -> Any:
    # Off the event loop: the input rails and the database writes take milliseconds that other requests need.
    turn = await asyncio.to_thread(
        svc.conversations.begin, principal, data.message, data.conversation_id, data.collections, data.adapter,
        data.max_new_tokens, retrieval=data.retrieval,
    )
    events = svc.conversations.stream(principal, turn)
    first = await first_event(events)
    if not data.stream:
        final = await last_event(first, events)
        svc.metrics.observe_answer(final.answer)
        return final_payload(turn, final)
    return EventStream(sse(first, events, turn, svc))


async def sse(first: Any, events: AsyncIterator[Any], turn: Any, svc: Services) -> AsyncIterator[ServerSentEventMessage]:
    try:
        event = first
        while True:
            if isinstance(event, TokenEvent):
                yield ServerSentEventMessage(data=json.dumps({"text": event.text}), event="token")
            else:
                svc.metrics.observe_answer(event.answer)
                yield ServerSentEventMessage(data=json.dumps(final_payload(turn, event)), event="final")
            event = await events.__anext__()
    except StopAsyncIteration:
        return
    except Exception as exc:  # noqa: BLE001 - the head is sent; the client learns of it as an event
        yield ServerSentEventMessage(data=json.dumps(stream_error(exc)), event="error")
    finally:
        await events.aclose()  # client gone or done: cancels generation, stores the partial answer


@post(
    "/v1/search",
    operation_id="search",
    summary="Retrieve passages without generating",
    description="Hybrid (BM25 + dense) search over the collections the key may read; each hit carries document, page, "
    "heading, text and scores.",
    status_code=200,
    responses=error_responses(400, *KEYED, 404, 413, 503),
)
async def search(data: SearchBody, principal: Principal, svc: Services) -> Response:
    hits = await anyio.to_thread.run_sync(
        lambda: svc.conversations.search(principal, data.query, data.k, data.collections, data.documents, data.mode)
    )
    return Response({"results": hits})
