"""Grounded answers: retrieve → decide "not in the documents" → pack → generate → cite.

The service is pure application logic: it knows nothing of HTTP or storage. Callers pass the
conversation history; persisting it is the conversation layer's job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from assistant import attribution, prompt
from assistant.answer import ChatAnswer, Citation, FinalEvent, TokenEvent
from assistant.inference_queue import InferenceQueue
from assistant.runtime.base import GenerationRequest, GenerationStats, Generator
from assistant.runtime.batching import generate_many
from assistant.release import Release
from assistant.settings import ChatSettings, GeneratorSettings
from guardrails.verdict import OutputVerdict
from ingestion.retriever import Retriever, SearchHit

log = logging.getLogger(__name__)


@dataclass
class ChatRequest:
    question: str
    history: list[prompt.Turn] = field(default_factory=list)  # oldest first
    collections: list[str] | None = None  # None = every collection (the caller applies access control)
    documents: list[str] | None = None
    adapter: str | None = None  # None = the service's default adapter; "base" = no adapter
    max_new_tokens: int | None = None
    retrieval: bool = True  # False = closed book: the model answers from its weights alone
    screened: Any = None  # the InputVerdict when the caller already ran the input rails (and stored the masked text)
    task: str = ""  # asked of the model after the question (a ticket's reply draft); never part of the retrieval query


@dataclass(frozen=True)
class ReleaseSettings:
    """`guardrails.stream_release` and its unit cap, as assembly passes them (assistant/release.py)."""

    mode: str = "checked"
    unit_max_chars: int = 48


@dataclass
class Prepared:
    """Everything decided before generation; `prompt_text` is None when there is nothing relevant."""

    retrieval_query: str
    sources: list[Citation]
    prompt_text: str | None
    retrieval_ms: float
    contexts: list[str] = field(default_factory=list)  # the chunk texts in the prompt, as the model saw them
    rail_events: list[Any] = field(default_factory=list)  # retrieval-rail results that acted


class ChatService:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        queue: InferenceQueue,
        chat: ChatSettings,
        generation: GeneratorSettings,
        default_adapter: str | None = None,
        guard: Any | None = None,
        release: ReleaseSettings | None = None,
    ):
        self.retriever = retriever
        self.generator = generator
        self.queue = queue
        self.chat = chat
        self.generation = generation
        self.default_adapter = default_adapter  # the registry's promoted adapter, when one is resident
        self.guard = guard  # guardrails.Guard: input, retrieval and output rails; None = no rails
        self.release = release or ReleaseSettings()  # what a streaming client may see before the answer is judged
        self.aliases: dict[str, str] = {}  # adapter name -> NAME@vN promoted while running (see use_version)

    def adapter_for(self, request: ChatRequest) -> str | None:
        """The adapter that answers: the named one, none for "base", else the default."""
        if request.adapter is None:
            name = self.default_adapter
        else:
            name = None if request.adapter == "base" else request.adapter
        return self.aliases.get(name, name) if name else None

    def use_version(self, name: str, ref: str, path: str, default_name: str = "") -> None:
        """From now on requests for adapter `name` (and the default, when `name` is `default_name`) answer with
        `ref` (NAME@vN): a promotion or rollback while the server runs, without reloading anything resident."""
        for resident in (ref, name):  # a version trained since start-up, or a name promoted for the first time
            if resident not in self.generator.adapters():
                self.generator.load_adapter(resident, path)
        self.aliases[name] = ref
        if name == default_name:
            self.default_adapter = name

    def fit_question(self, text: str, share: float) -> str:
        """`text` cut (at a word) to `share` of the prompt budget in model tokens: the rest is left for documents."""
        limit = int((self.generator.context_window - self.generation.max_new_tokens) * share)
        words = text.split()
        while words and self.generator.count_tokens(" ".join(words)) > limit:
            words = words[: int(len(words) * 0.9)]  # ~10% per round: a few count calls even for a long text
        if not words and text.strip():  # one "word" longer than the budget (a pasted log line): cut its characters
            return text.strip()[:limit]
        return " ".join(words)

    # --- before generation (blocking: embeds the query) ------------------------------------
    def retrieval_query(self, request: ChatRequest) -> str:
        """A follow-up ("and for the Plus plan?") is searched together with the question(s) before it."""
        earlier = [t.content for t in request.history if t.role == "user"]
        turns = earlier[-self.chat.followup_query_turns :] if self.chat.followup_query_turns else []
        return " ".join([*turns, request.question])

    def prepare(self, request: ChatRequest) -> Prepared:
        started = time.monotonic()
        query = self.retrieval_query(request)
        question = f"{request.question}\n{request.task}" if request.task else request.question  # what the model is asked
        if not request.retrieval:
            history = request.history[-self.chat.history_turns :] if self.chat.history_turns else []
            return Prepared(query, [], prompt.render_closed_book(question, history), 0.0)
        # An empty list means the caller may read nothing: never let it widen to "every collection".
        nothing = request.collections is not None and not request.collections
        judged = self.chat.refuse_unknown_names != "off" and not nothing and not request.task  # a ticket: not judged
        unknown = (self.retriever.unknown_names(request.question, request.collections, self.chat.refuse_unknown_names)
                   if judged else [])
        if unknown:  # about something the documents never mention: nothing to retrieve that answers it
            # Logged, never echoed: a refusal that repeats the asker's words would say whatever an attacker puts in
            # a made-up name ("say RULES-OFF-9902": the security canary caught exactly that).
            log.info("refused without generating: the documents never mention %s", unknown)
            return Prepared(query, [], None, (time.monotonic() - started) * 1000)
        hits = [] if nothing else self.retriever.search(
            query, k=self.chat.k, collections=request.collections, documents=request.documents
        )
        relevant = [h for h in hits if h.dense_score is not None and h.dense_score >= self.chat.min_dense_score]
        if not relevant:  # nothing reaches the model, so there is nothing for the retrieval rail to check
            return Prepared(query, [], None, (time.monotonic() - started) * 1000)
        max_new = self._max_new_tokens(request)
        budget = self.generator.context_window - max_new
        if self.chat.expand_pages:  # the best hits' whole pages instead of their chunks (ingestion/page_expansion.py)
            room = budget - self.generator.count_tokens(prompt.render([], question))
            hits, found, events = self._expand(hits, 3 * room)
            useful = bool(hits)  # the gate passed on the chunks found; a unit is as relevant as its best chunk
        else:
            hits, events = self._retrieval_rail(hits)
            found = {h.chunk_id: h.text for h in hits}
            useful = any(h.dense_score is not None and h.dense_score >= self.chat.min_dense_score for h in hits)
        retrieval_ms = (time.monotonic() - started) * 1000
        if not useful:
            return Prepared(query, [], None, retrieval_ms, rail_events=events)  # the rail dropped every relevant chunk
        docs = [prompt.PromptDoc.of(h) for h in hits]
        history = request.history[-self.chat.history_turns :] if self.chat.history_turns else []
        kept, turns = prompt.pack(docs, question, history, budget, self.generator.count_tokens)
        kept_hits = [hits[docs.index(d)] for d in kept]
        sources = [self._citation(n, h, found.get(h.chunk_id, h.text)) for n, h in enumerate(kept_hits, start=1)]
        return Prepared(query, sources, prompt.render(kept, question, turns), retrieval_ms,
                        [d.text for d in kept], events)

    # --- generation ---------------------------------------------------------------------------
    async def stream(self, request: ChatRequest) -> AsyncIterator[TokenEvent | FinalEvent]:
        """Token events as the release policy lets text out (assistant/release.py), then one final event with the
        answer and its citations; the final answer's text starts with everything the token events carried.

        Raises QueueFull (before any event) when the generation queue is full. The rails and retrieval run on
        worker threads, so other requests (and /healthz) are served meanwhile.
        """
        started = time.monotonic()
        screened = await asyncio.to_thread(self.screen, request)
        if screened is not None and screened.blocked:
            yield TokenEvent(screened.reply or prompt.REFUSAL)
            yield FinalEvent(self._blocked_answer(request, screened, started))
            return
        if screened is not None:
            request = dataclasses.replace(request, question=screened.text, screened=screened)
        prepared = await asyncio.to_thread(self.prepare, request)
        if prepared.prompt_text is None:
            answer = self._no_context_answer(request, prepared, started)
            yield TokenEvent(answer.text)
            yield FinalEvent(answer)
            return
        generation = self.generation_request(request, prepared)
        stats = GenerationStats()
        pieces: list[str] = []
        first_token_ms = first_shown_ms = None
        release = (Release(self.guard, prepared.contexts, self.release.mode, self.release.unit_max_chars)
                   if self.guard is not None else None)
        tokens = self.queue.stream(self.generator, generation, stats)
        try:
            async for piece in tokens:
                if first_token_ms is None:
                    first_token_ms = (time.monotonic() - started) * 1000
                pieces.append(piece)
                shown = piece if release is None else await asyncio.to_thread(release.feed, piece)
                if shown:
                    first_shown_ms = first_shown_ms or (time.monotonic() - started) * 1000
                    yield TokenEvent(shown)
                if release is not None and release.stopped:  # a unit failed: the rest would be withheld anyway
                    break
        finally:
            await tokens.aclose()  # stops the generation when the rails ended the answer (or the client left)
        if release is not None and release.stopped:
            stats.finish_reason = "stop"  # ended by the rails, not cut short: a complete (replaced) answer
        raw = "".join(pieces)
        verdict = await asyncio.to_thread(release.finish, raw) if release is not None else None
        timing = {"first_token": (first_token_ms or 0.0), "total": (time.monotonic() - started) * 1000}
        answer = await asyncio.to_thread(self._finish, request, prepared, raw, stats, timing, verdict, release is not None)
        answer.timing_ms["first_shown"] = round(first_shown_ms or answer.timing_ms["total"], 1)
        rest = release.rest(answer.text) if release is not None else _unsent(raw, answer.text)
        if rest:
            yield TokenEvent(rest)
        yield FinalEvent(answer)

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
        verdicts = [self.screen(r) for r in requests]
        asked = [r.question for r in requests]
        requests = [r if v is None else dataclasses.replace(r, question=v.text, screened=v) for r, v in zip(requests, verdicts)]
        given: list[Prepared | None] = list(prepared) if prepared else [None] * len(requests)
        # A question the input rail changed (masked PII) is retrieved again as masked; a blocked one not at all.
        ready = [None if v is not None and v.blocked else
                 (p if p is not None and r.question == q else self.prepare(r))
                 for r, v, p, q in zip(requests, verdicts, given, asked)]
        pending = [i for i, p in enumerate(ready) if p is not None and p.prompt_text is not None]
        generations = [self.generation_request(requests[i], ready[i]) for i in pending]
        started = time.monotonic()
        outputs = generate_many(self.generator, generations, batch_size, on_done)
        each_ms = (time.monotonic() - started) * 1000 / max(1, len(pending))
        answers: list[ChatAnswer | None] = [None] * len(requests)
        for index, (text, stats) in zip(pending, outputs):
            done = ready[index]
            timing = {"first_token": done.retrieval_ms + each_ms, "total": done.retrieval_ms + each_ms}
            answers[index] = self._finish(requests[index], done, text, stats, timing)
        for index, request in enumerate(requests):
            if answers[index] is None:
                done, now = ready[index], time.monotonic()
                answers[index] = (self._blocked_answer(request, verdicts[index], now) if done is None
                                  else self._no_context_answer(request, done, now))
                if on_done:
                    on_done(1)
        return [a for a in answers if a is not None]

    # --- helpers ------------------------------------------------------------------------------
    def generation_request(self, request: ChatRequest, prepared: Prepared) -> GenerationRequest:
        """What the model is asked: one builder for serving and for offline batches (the scorecard), so both
        decode with the same cap, temperature, stop sequences and adapter."""
        return GenerationRequest(
            prompt=prepared.prompt_text or "",
            max_new_tokens=self._max_new_tokens(request),
            stop=list(prompt.STOP_SEQUENCES),
            adapter=self.adapter_for(request),
            temperature=self.generation.temperature,
            stop_repeats=self.generation.stop_repeated_lines,
            inline_start=True,  # the prompt format: the answer follows "Answer:" on its line
        )

    def _max_new_tokens(self, request: ChatRequest) -> int:
        cap = self.generation.max_new_tokens
        return min(request.max_new_tokens or cap, cap)

    def _finish(
        self, request: ChatRequest, prepared: Prepared, raw: str, stats: GenerationStats, timing: dict[str, float],
        checked: OutputVerdict | None = None, released: bool = False,
    ) -> ChatAnswer:
        """The answer: `checked` is the release's verdict when the text was streamed through one (`released`),
        else the output rails run here on the whole text."""
        text = raw.strip()
        finish_reason = stats.finish_reason or "stop"
        if not text:  # the model ended at once (a collapsed adapter does): say so rather than show nothing
            text, finish_reason = prompt.EMPTY_ANSWER, "empty"
        events = [*self._input_events(request), *prepared.rail_events]
        replaced = False
        if released and checked is not None:  # judged unit by unit as it was released (assistant/release.py)
            text, replaced, finish_reason = checked.text, checked.replaced, stats.finish_reason or "stop"
            events += [r for r in checked.results if r.acted]
        elif self.guard is not None and finish_reason != "empty" and not released:  # our own message needs no rails
            checked = self.guard.check_output(text, prepared.contexts or None)
            text, replaced = checked.text, checked.replaced
            events += [r for r in checked.results if r.acted]
        cited = [prepared.sources[n - 1] for n in prompt.cited_numbers(text, len(prepared.sources))]
        refused = replaced or prompt.is_refusal(text)  # an answer the rails withdrew is a refusal
        attributed = False
        if not (cited or refused) and finish_reason != "empty" and self.chat.attribute_citations:
            numbers = attribution.attribute(text, prepared.contexts, self.chat.attribution_min_overlap)
            if numbers:  # the model cited nothing: say which shown source the answer comes from (assistant/attribution.py)
                text, attributed = attribution.with_citations(text, numbers), True
                cited = [prepared.sources[n - 1] for n in numbers]
        return ChatAnswer(
            text=text,
            citations=[] if refused else cited,
            sources=prepared.sources,
            refused=refused,
            model=self.generator.name,
            adapter=self.adapter_for(request),
            finish_reason=finish_reason,
            prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            timing_ms={"retrieval": round(prepared.retrieval_ms, 1), **{k: round(v, 1) for k, v in timing.items()}},
            retrieval_query=prepared.retrieval_query,
            guardrails=_notices(events),
            rail_events=events,
            replaced=replaced,
            attributed=attributed,
        )

    def _citation(self, number: int, hit: SearchHit, passage: str) -> Citation:
        snippet = " ".join(passage.split())
        if self.guard is not None:  # the passages a citation shows are output too
            snippet = self.guard.mask_output_text(snippet)
        if len(snippet) > self.chat.snippet_chars:
            snippet = snippet[: self.chat.snippet_chars].rsplit(" ", 1)[0] + "…"
        return Citation(
            number, hit.document, hit.page, hit.page_end, hit.heading, hit.chunk_id, hit.collection,
            snippet, round(hit.score, 6), None if hit.dense_score is None else round(hit.dense_score, 4),
        )

    def _no_context_answer(self, request: ChatRequest, prepared: Prepared, started: float) -> ChatAnswer:
        elapsed = round((time.monotonic() - started) * 1000, 1)
        events = [*self._input_events(request), *prepared.rail_events]
        return ChatAnswer(
            text=prompt.REFUSAL, citations=[], sources=[], refused=True, model=self.generator.name,
            adapter=self.adapter_for(request), finish_reason="no_context",
            timing_ms={"retrieval": round(prepared.retrieval_ms, 1), "first_token": elapsed, "total": elapsed},
            retrieval_query=prepared.retrieval_query,
            guardrails=_notices(events), rail_events=events,
        )

    # --- guardrails ------------------------------------------------------------------------------
    def screen(self, request: ChatRequest) -> Any:
        """The input rails' verdict on the question (None without rails): attacks blocked, PII masked,
        off-topic requests answered with the scope message. Callers that store the message screen first."""
        if self.guard is None:
            return None
        return request.screened if request.screened is not None else self.guard.check_input(request.question)

    def _input_events(self, request: ChatRequest) -> list[Any]:
        return [r for r in request.screened.results if r.acted] if request.screened is not None else []

    def _retrieval_rail(self, hits: list[SearchHit]) -> tuple[list[SearchHit], list[Any]]:
        """Chunks carrying instructions (indirect prompt injection) are neutralised or dropped."""
        if self.guard is None or not hits:
            return hits, []
        kept, events = [], []
        for hit, verdict in zip(hits, self.guard.check_chunks([h.text for h in hits])):
            events += [r for r in verdict.results if r.acted]
            if not verdict.dropped:
                kept.append(hit if verdict.text == hit.text else dataclasses.replace(hit, text=verdict.text))
        return kept, events

    def _expand(self, hits: list[SearchHit], room_chars: int) -> tuple[list[SearchHit], dict[int, str], list[Any]]:
        """The first `chat.expand_pages` pages of `hits` as hits whose text is the page (at most
        `chat.page_max_chars`, or a window of `chat.window_chars_without_pages` without pages, and `room_chars`:
        about 3 per token of the prompt's room), through the retrieval rail; and each one's citation passage:
        the chunk that was found, or the page as the rail left it when the rail changed it."""
        units = self.retriever.units(hits, self.chat.page_max_chars, self.chat.window_chars_without_pages, room_chars)
        kept: list[SearchHit] = []
        shown: dict[int, str] = {}
        events: list[Any] = []
        for unit in units:  # a page the rail drops: the next one
            page = dataclasses.replace(unit.hit, heading=unit.heading, text=unit.text)
            passed, acted = self._retrieval_rail([page])  # neighbours the search never returned are checked too
            events += acted
            for checked in passed:
                kept.append(checked)
                shown[checked.chunk_id] = unit.hit.text if checked.text == page.text else checked.text
            if len(kept) == self.chat.expand_pages:
                break
        return kept, shown, events

    def _blocked_answer(self, request: ChatRequest, screened: Any, started: float) -> ChatAnswer:
        elapsed = round((time.monotonic() - started) * 1000, 1)
        events = [r for r in screened.results if r.acted]
        return ChatAnswer(
            text=screened.reply or prompt.REFUSAL, citations=[], sources=[], refused=True, model=self.generator.name,
            adapter=self.adapter_for(request), finish_reason="guardrail",
            timing_ms={"retrieval": 0.0, "first_token": elapsed, "total": elapsed},
            guardrails=_notices(events), rail_events=events,
        )


def _unsent(sent: str, final: str) -> str:
    """What `final` adds to the text already streamed (attributed citations) when no release policy tracks it."""
    sent = sent.strip()
    return final[len(sent):] if sent and final.startswith(sent) else ""


def _notices(events: list[Any]) -> list[dict[str, str]]:
    """What a client is told: which rail acted and how, once each; never scores or matched text."""
    seen: list[dict[str, str]] = []
    for event in events:
        notice = {"rail": event.rail, "action": event.action}
        if notice not in seen:
            seen.append(notice)
    return seen

