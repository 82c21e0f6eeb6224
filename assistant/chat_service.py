"""Grounded answers: retrieve → decide "not in the documents" → pack → generate → cite.

The service is pure application logic: it knows nothing of HTTP or storage. Callers pass the
conversation history; persisting it is the conversation layer's job.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from assistant import prompt
from assistant.answer import ChatAnswer, Citation, FinalEvent, TokenEvent
from assistant.inference_queue import InferenceQueue
from assistant.runtime.base import GenerationRequest, GenerationStats, Generator
from assistant.runtime.batching import generate_many
from assistant.settings import ChatSettings, GeneratorSettings
from ingestion.retriever import Retriever, SearchHit


@dataclass
class ChatRequest:
    question: str
    history: list[prompt.Turn] = field(default_factory=list)  # oldest first
    collections: list[str] | None = None  # None = every collection (the caller applies access control)
    documents: list[str] | None = None
    adapter: str | None = None  # None = the service's default adapter; "base" = no adapter
    max_new_tokens: int | None = None
    retrieval: bool = True  # False = closed book: the model answers from its weights alone


@dataclass
class Prepared:
    """Everything decided before generation; `prompt_text` is None when there is nothing relevant."""

    retrieval_query: str
    sources: list[Citation]
    prompt_text: str | None
    retrieval_ms: float


class ChatService:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        queue: InferenceQueue,
        chat: ChatSettings,
        generation: GeneratorSettings,
        default_adapter: str | None = None,
    ):
        self.retriever = retriever
        self.generator = generator
        self.queue = queue
        self.chat = chat
        self.generation = generation
        self.default_adapter = default_adapter  # the registry's promoted adapter, when one is resident

    def adapter_for(self, request: ChatRequest) -> str | None:
        """The adapter that answers: the named one, none for "base", else the default."""
        if request.adapter is None:
            return self.default_adapter
        return None if request.adapter == "base" else request.adapter

    # --- before generation (blocking: embeds the query) ------------------------------------
    def retrieval_query(self, request: ChatRequest) -> str:
        """A follow-up ("and for the Plus plan?") is searched together with the question(s) before it."""
        earlier = [t.content for t in request.history if t.role == "user"]
        turns = earlier[-self.chat.followup_query_turns :] if self.chat.followup_query_turns else []
        return " ".join([*turns, request.question])

    def prepare(self, request: ChatRequest) -> Prepared:
        started = time.monotonic()
        query = self.retrieval_query(request)
        if not request.retrieval:
            history = request.history[-self.chat.history_turns :] if self.chat.history_turns else []
            return Prepared(query, [], prompt.render_closed_book(request.question, history), 0.0)
        # An empty list means the caller may read nothing: never let it widen to "every collection".
        nothing = request.collections is not None and not request.collections
        hits = [] if nothing else self.retriever.search(
            query, k=self.chat.k, collections=request.collections, documents=request.documents
        )
        relevant = [h for h in hits if h.dense_score is not None and h.dense_score >= self.chat.min_dense_score]
        retrieval_ms = (time.monotonic() - started) * 1000
        if not relevant:
            return Prepared(query, [], None, retrieval_ms)
        max_new = self._max_new_tokens(request)
        budget = self.generator.context_window - max_new
        docs = [prompt.PromptDoc.of(h) for h in hits]
        history = request.history[-self.chat.history_turns :] if self.chat.history_turns else []
        kept, turns = prompt.pack(docs, request.question, history, budget, self.generator.count_tokens)
        kept_hits = [hits[docs.index(d)] for d in kept]
        sources = [self._citation(n, h) for n, h in enumerate(kept_hits, start=1)]
        return Prepared(query, sources, prompt.render(kept, request.question, turns), retrieval_ms)

    # --- generation ---------------------------------------------------------------------------
    async def stream(self, request: ChatRequest) -> AsyncIterator[TokenEvent | FinalEvent]:
        """Token events as the model writes, then one final event with the answer and its citations.

        Raises QueueFull (before any event) when the generation queue is full.
        """
        started = time.monotonic()
        prepared = await asyncio.to_thread(self.prepare, request)
        if prepared.prompt_text is None:
            yield TokenEvent(prompt.REFUSAL)
            yield FinalEvent(self._no_context_answer(request, prepared, started))
            return
        generation = GenerationRequest(
            prompt=prepared.prompt_text,
            max_new_tokens=self._max_new_tokens(request),
            stop=list(prompt.STOP_SEQUENCES),
            adapter=self.adapter_for(request),
            temperature=self.generation.temperature,
        )
        stats = GenerationStats()
        pieces: list[str] = []
        first_token_ms = None
        async for piece in self.queue.stream(self.generator, generation, stats):
            if first_token_ms is None:
                first_token_ms = (time.monotonic() - started) * 1000
            pieces.append(piece)
            yield TokenEvent(piece)
        timing = {"first_token": (first_token_ms or 0.0), "total": (time.monotonic() - started) * 1000}
        yield FinalEvent(self._finish(request, prepared, "".join(pieces), stats, timing))

    async def answer(self, request: ChatRequest) -> ChatAnswer:
        async for event in self.stream(request):
            if isinstance(event, FinalEvent):
                return event.answer
        raise RuntimeError("the answer stream ended without a final event")

    def answer_batch(
        self,
        requests: list[ChatRequest],
        prepared: list[Prepared] | None = None,
        batch_size: int = 8,
        on_done: Callable[[int], None] | None = None,
    ) -> list[ChatAnswer]:
        """Answers to many questions at once (blocking), for offline jobs such as evaluation.

        `prepared` lets a caller reuse retrieval across runs over the same questions (an
        evaluation's variants with and without an adapter retrieve the same chunks). Latency per
        answer is the batch's wall time shared evenly among its answers.
        """
        prepared = prepared or [self.prepare(r) for r in requests]
        pending = [i for i, p in enumerate(prepared) if p.prompt_text is not None]
        generations = [
            GenerationRequest(prepared[i].prompt_text or "", self._max_new_tokens(requests[i]), list(prompt.STOP_SEQUENCES),
                              adapter=self.adapter_for(requests[i]))
            for i in pending
        ]
        started = time.monotonic()
        outputs = generate_many(self.generator, generations, batch_size, on_done)
        each_ms = (time.monotonic() - started) * 1000 / max(1, len(pending))
        answers: list[ChatAnswer | None] = [None] * len(requests)
        for index, (text, stats) in zip(pending, outputs):
            timing = {"first_token": prepared[index].retrieval_ms + each_ms, "total": prepared[index].retrieval_ms + each_ms}
            answers[index] = self._finish(requests[index], prepared[index], text, stats, timing)
        for index, request in enumerate(requests):
            if answers[index] is None:
                answers[index] = self._no_context_answer(request, prepared[index], time.monotonic())
                if on_done:
                    on_done(1)
        return [a for a in answers if a is not None]

    # --- helpers ------------------------------------------------------------------------------
    def _max_new_tokens(self, request: ChatRequest) -> int:
        cap = self.generation.max_new_tokens
        return min(request.max_new_tokens or cap, cap)

    def _finish(
        self, request: ChatRequest, prepared: Prepared, raw: str, stats: GenerationStats, timing: dict[str, float]
    ) -> ChatAnswer:
        text = raw.strip()
        cited = [prepared.sources[n - 1] for n in prompt.cited_numbers(text, len(prepared.sources))]
        refused = prompt.is_refusal(text)
        return ChatAnswer(
            text=text,
            citations=[] if refused else cited,
            sources=prepared.sources,
            refused=refused,
            model=self.generator.name,
            adapter=self.adapter_for(request),
            finish_reason=stats.finish_reason or "stop",
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            timing_ms={"retrieval": round(prepared.retrieval_ms, 1), **{k: round(v, 1) for k, v in timing.items()}},
            retrieval_query=prepared.retrieval_query,
        )

    def _citation(self, number: int, hit: SearchHit) -> Citation:
        snippet = " ".join(hit.text.split())
        if len(snippet) > self.chat.snippet_chars:
            snippet = snippet[: self.chat.snippet_chars].rsplit(" ", 1)[0] + "…"
        return Citation(
            number, hit.document, hit.page, hit.page_end, hit.heading, hit.chunk_id, hit.collection,
            snippet, round(hit.score, 6), None if hit.dense_score is None else round(hit.dense_score, 4),
        )

    def _no_context_answer(self, request: ChatRequest, prepared: Prepared, started: float) -> ChatAnswer:
        elapsed = round((time.monotonic() - started) * 1000, 1)
        return ChatAnswer(
            text=prompt.REFUSAL, citations=[], sources=[], refused=True, model=self.generator.name,
            adapter=self.adapter_for(request), finish_reason="no_context",
            timing_ms={"retrieval": round(prepared.retrieval_ms, 1), "first_token": elapsed, "total": elapsed},
            retrieval_query=prepared.retrieval_query,
        )

