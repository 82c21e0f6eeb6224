"""What handlers reach: the assembled services, kept on the app's state by `assistant.app`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from litestar import Request

from assistant.api.metrics import Metrics
from assistant.auth import Principal, authenticate
from assistant.chat_service import ChatService
from assistant.conversations import ConversationService
from assistant.db import Database
from assistant.errors import ApiError
from assistant.inference_queue import InferenceQueue
from assistant.jobs import JobRunner
from assistant.rate_limit import Limiter
from assistant.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    jobs: JobRunner
    queue: InferenceQueue
    limiter: Limiter  # a DatabaseRateLimiter with several workers (server.shared_state)
    metrics: Metrics
    notes: dict[str, str] = field(default_factory=dict)  # what /readyz says while loading or after a failure
    loop: Any = None  # assistant.loop_hooks.LoopHooks once the models are loaded
    _chat: ChatService | None = None
    _conversations: ConversationService | None = None

    @property
    def ready(self) -> bool:
        return self._conversations is not None

    def loaded(self, chat: ChatService, conversations: ConversationService) -> None:
        self._chat, self._conversations = chat, conversations
        self.notes = {"model": chat.generator.name}

    @property
    def chat(self) -> ChatService:
        self._require_ready()
        return self._chat  # type: ignore[return-value]

    @property
    def conversations(self) -> ConversationService:
        self._require_ready()
        return self._conversations  # type: ignore[return-value]

    def _require_ready(self) -> None:
        if self._conversations is None:
            raise ApiError("not_ready", "the assistant is still loading its model and index", 503, {"Retry-After": "5"})


def services(request: Request) -> Services:
    return request.app.state.services


async def principal(request: Request) -> Principal:
    """The calling key (401 without a valid one), charged against its rate limit (429 beyond it)."""
    svc: Services = request.app.state.services
    # A database read (and at most one write a minute): on a worker thread, so a locked database delays this
    # request, not the event loop that /healthz and every stream share.
    who = await anyio.to_thread.run_sync(authenticate, svc.db.keys, dict(request.headers))
    if svc.limiter.shared:  # a database write: off the event loop too
        decision = await anyio.to_thread.run_sync(svc.limiter.check, who.key_id)
    else:
        decision = svc.limiter.check(who.key_id)
    if not decision.allowed:
        raise ApiError(
            "rate_limited",
            f"rate limit of {svc.settings.server.rate_limit_per_minute} requests per minute exceeded",
            429,
            {"Retry-After": decision.retry_after_header},
        )
    return who
