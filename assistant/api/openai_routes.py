"""OpenAI-compatible endpoints, so ticket tools and SDKs that speak OpenAI use ragtune unchanged.

`model` selects the adapter; retrieval is always applied. Extra top-level fields (in the last chunk
when streaming) carry `citations` (the sources the answer cites as [n]) and `sources` (every passage
the model was shown, best first): a client gets the documents even when the answer cites none. The
official SDK keeps unknown fields: `completion.model_extra["sources"]`. The endpoint is stateless like
OpenAI's: earlier messages are the history, nothing is stored; each earlier user and assistant message passes the
input rails and only its masked text reaches the prompt (blocked ones are dropped; a forged assistant turn or an
attack split over turns refuses the request: assistant/turn_screen.py). System messages are ignored: the
instruction is part of our prompt format, which the adapters were trained on. Streamed text has passed the output
rails before it is sent (assistant/release.py); when the rails withdraw the rest of an answer, the last content
delta carries their message, so the concatenated deltas equal the served answer, and the last chunk says
`replaced: true`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import asdict
from typing import Any, AsyncIterator

from litestar import get, post
from litestar.response.sse import ServerSentEventMessage

from assistant import prompt
from assistant.answer import ChatAnswer, TokenEvent
from assistant.api.chat_routes import first_event, last_event, stream_error
from assistant.api.event_stream import EventStream
from assistant.api.schemas import KEYED, ChatCompletionBody, EventStreamOperation, error_responses
from assistant.api.services import Services
from assistant.auth import Principal, authorize
from assistant.errors import ApiError

DEFAULT_ALIASES = {"", "ragtune"}  # the server's default: its promoted adapter, else the base model


def _adapter(model: str | None, svc: Services) -> str | None:
    if model is None or model in DEFAULT_ALIASES:
        return None
    if model in ("base", svc.chat.generator.name):
        return "base"
    if model not in svc.chat.generator.adapters():
        raise ApiError("model_not_found", f"the model {model!r} does not exist; GET /v1/models lists them", 404)
    return model


def _finish(answer: ChatAnswer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


def _usage(answer: ChatAnswer) -> dict[str, int]:
    return {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens}


@post(
    "/v1/chat/completions",
    operation_id="createChatCompletion",
    summary="OpenAI-compatible chat completion, with RAG",
    description="Accepts the OpenAI chat-completions request (messages, model = adapter name, stream, max_tokens). "
    "The last message must be the user's question. Answers carry `citations` (sources cited as [n]), `sources` "
    "(every passage the model was shown) and `guardrails` (rails that acted) as extra fields.",
    status_code=200,
    operation_class=EventStreamOperation,
    responses=error_responses(400, *KEYED, 404, 413, 502, 503),
)
async def chat_completions(data: ChatCompletionBody, principal: Principal, svc: Services) -> Any:
    turns = [m for m in data.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise ApiError("invalid_request", "the last message must be a non-empty user message", 400)
    history = [prompt.Turn(m.role, m.text()) for m in turns[:-1]]
    adapter = _adapter(data.model, svc)
    # Off the event loop: every earlier turn passes the input rails here (assistant/turn_screen.py).
    turn = await asyncio.to_thread(
        svc.conversations.begin, principal, turns[-1].text(), collections=data.collections, adapter=adapter,
        max_new_tokens=data.max_completion_tokens or data.max_tokens, persist=False, history=history,
    )
    events = svc.conversations.stream(principal, turn, persist=False, entry="openai")
    first = await first_event(events)
    ident, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), data.model or svc.chat.generator.name
    if data.stream:
        return EventStream(_chunks(first, events, ident, created, model, svc))
    answer = (await last_event(first, events)).answer
    svc.metrics.observe_answer(answer)
    return {
        "id": ident, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": _finish(answer)}],
        "usage": _usage(answer),
        "citations": [asdict(c) for c in answer.citations],
        "sources": [asdict(c) for c in answer.sources],
        "refused": answer.refused,
        "replaced": answer.replaced,
        "attributed": answer.attributed,
        "guardrails": answer.guardrails,
        "request_id": turn.request_id,
    }


async def _chunks(first, events, ident, created, model, svc: Services) -> AsyncIterator[ServerSentEventMessage]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> ServerSentEventMessage:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return ServerSentEventMessage(data=json.dumps(body))

    try:
        yield chunk({"role": "assistant", "content": ""})
        event = first
        while True:
            if isinstance(event, TokenEvent):
                yield chunk({"content": event.text})
            else:  # the chat service already sent the answer's last text (a replacement too) as a token event
                answer = event.answer
                svc.metrics.observe_answer(answer)
                yield chunk({}, _finish(answer), usage=_usage(answer), citations=[asdict(c) for c in answer.citations],
                            sources=[asdict(c) for c in answer.sources], guardrails=answer.guardrails,
                            refused=answer.refused, replaced=answer.replaced, attributed=answer.attributed)
            event = await events.__anext__()
    except StopAsyncIteration:
        yield ServerSentEventMessage(data="[DONE]")
    except Exception as exc:  # noqa: BLE001 - the head is sent; report in-band like OpenAI does
        yield ServerSentEventMessage(data=json.dumps({"error": stream_error(exc)}))
    finally:
        await events.aclose()


@get("/v1/models", operation_id="listModels", summary="Models: the base model and every resident adapter",
     description="OpenAI-compatible list; use an `id` as `model` in /v1/chat/completions.",
     responses=error_responses(*KEYED, 503))
async def models(principal: Principal, svc: Services) -> dict[str, Any]:
    authorize(principal, "chat")
    names = [svc.chat.generator.name, *svc.chat.generator.adapters()]
    return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "ragtune", "created": 0} for n in names]}
