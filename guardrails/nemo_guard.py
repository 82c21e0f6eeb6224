"""The Guard run through NeMo Guardrails: the Colang flows in the rails configuration decide, our actions check.

`NemoGuard` has the Guard's interface, so the chat service does not know which engine it has. Each check runs
`LLMRails.generate_async` with only that rail type enabled (no LLM is called) and builds the served verdict from
what the flows left in their variables (the contract is written at the top of guardrails/config/rails.co):
`$ragtune_action` (block / replace / mask), `$ragtune_reply`, `$user_message`, `$bot_message` and, for the
retrieval rail, `$relevant_chunks`. The actions' own findings (`$verdict`) only feed the audit log, and a finding
the flows did not apply is logged as passed. So an operator who edits a flow (drops a `stop`, changes a reply,
comments out a replacement, removes a flow from config.yml) changes what is served, as NeMo users expect.

NeMo runs retrieval rails only inside its own generation, after its knowledge-base lookup; ragtune retrieves
itself, so the configured retrieval flows run in a second, rails-only LLMRails of the same configuration where
they stand in the input slot, over the chunk list given as the context variable `relevant_chunks`.

The API is synchronous (callers off the event loop use asyncio.to_thread). Each calling thread runs the rails on
its own event loop, so concurrent checks run side by side in their callers' threads instead of queueing on one
loop thread: 4 checks that each wait 0.2 s outside the GIL take 0.24 s together (0.87 s on one shared loop thread,
tests/test_nemo_flows.py). CPU-bound checks on 2 busy cores gain nothing either way (32 MiniLM input checks from 8
threads: 1.14 s vs 1.12 s). A check costs ~20 ms more than the Guard alone (37 vs 16 ms median, 2 busy cores).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from guardrails.guard import Guard
from guardrails.verdict import ChunkVerdict, InputVerdict, OutputVerdict, RailResult

TIMEOUT_S = 30  # one check; the Guard's own work is tens of ms, the rest is NeMo's event processing
INPUT_VARS = ["ragtune_action", "ragtune_reply", "user_message", "verdict"]
OUTPUT_VARS = ["ragtune_action", "bot_message", "verdict"]


_PARSE_LOCK = threading.RLock()  # re-entrant: a wrapped parser may call a wrapped parser


def serialise_expression_parsing() -> None:
    """One lock around the expression parser NeMo's Colang runtime calls on every flow step (simpleeval's
    `parse`, which is `ast.parse`). On CPython 3.11 (this lock's 3.11.7) `ast.parse` in two threads at once can
    raise SystemError "AST constructor recursion depth mismatch": the AST converter keeps its recursion depth in
    interpreter-wide state (reported from threaded programs in CPython gh-106905 and by several libraries). Checks run on several threads, and such an error failed a check closed:
    a benign message blocked (seen once in a full test run, 4 concurrent checks). A parse takes microseconds, so
    the lock costs nothing measurable; it is patched in once per process, idempotently."""
    import simpleeval

    original = simpleeval.SimpleEval.parse  # a staticmethod: the plain function through the class
    if getattr(original, "ragtune_serialised", False):
        return

    def parse(expr):
        with _PARSE_LOCK:
            return original(expr)

    parse.ragtune_serialised = True
    simpleeval.SimpleEval.parse = staticmethod(parse)


class NemoGuard:
    def __init__(self, guard: Guard, config_dir: str | Path | None = None):
        """`config_dir`: the NeMo rails configuration (config.yml + Colang flows); None or empty = the packaged
        guardrails/config."""
        os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
        # NeMo logs ~30 INFO lines of its event loop per request (15 MB in a 2-minute soak); our audit log and
        # metrics say what the rails did. Its warnings and errors still show.
        logging.getLogger("nemoguardrails").setLevel(logging.WARNING)
        from guardrails.actions import load_config, load_rails

        serialise_expression_parsing()
        self.guard = guard
        self.config = guard.config
        rails_config = load_config(config_dir)
        self.rails = load_rails(guard, config=rails_config)
        self.retrieval_rails = None  # the configured retrieval flows in the input slot of a rails-only copy
        if rails_config.rails.retrieval.flows:
            copy = rails_config.model_copy(deep=True)
            copy.rails.input.flows = list(rails_config.rails.retrieval.flows)
            copy.rails.output.flows = []
            self.retrieval_rails = load_rails(guard, config=copy)
        self._local = threading.local()
        self._spill = ThreadPoolExecutor(4, thread_name_prefix="nemo-guardrails")  # callers already inside a loop

    # -- running the rails ----------------------------------------------------------------------------------
    def _generate(self, rails, messages: list[dict[str, Any]], rail: str, output_vars: list[str]):
        options = {"rails": [rail], "output_vars": output_vars, "log": {"activated_rails": True}}
        coro_args = (rails, messages, options)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run_here(*coro_args)
        # Called from async code (a loop runs in this thread): run on a worker thread's loop and wait. This still
        # holds the caller's loop; async callers should use asyncio.to_thread(guard.check_...).
        return self._spill.submit(self._run_here, *coro_args).result(timeout=TIMEOUT_S)

    def _run_here(self, rails, messages, options):
        loop = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = self._local.loop = asyncio.new_event_loop()
        return loop.run_until_complete(asyncio.wait_for(rails.generate_async(messages=messages, options=options),
                                                        TIMEOUT_S))

    # -- the rails ---------------------------------------------------------------------------------------
    def check_input(self, text: str) -> InputVerdict:
        if not self.config.enabled:
            return InputVerdict(False, text)
        response = self._generate(self.rails, [{"role": "user", "content": text}], "input", INPUT_VARS)
        data = response.output_data or {}
        findings = data.get("verdict") if isinstance(data.get("verdict"), dict) else {}
        stopped = _stopped_by(response)
        blocked = data.get("ragtune_action") == "block" or stopped is not None
        served = data.get("user_message")
        served = served if isinstance(served, str) else text
        if blocked:  # the stored copy of a blocked message: the findings' masked form (a blocked message's masker)
            stored = findings.get("text") if isinstance(findings.get("text"), str) else served
            reply = data.get("ragtune_reply") or _last_content(response) or self.config.refusal_message
            results = _applied(_results(findings), {"block", "replace", "mask"})
            if not any(r.acted and r.action in ("block", "replace") for r in results):
                results.append(RailResult("flow", True, "block", 1.0, stopped or "ragtune_action"))
            return InputVerdict(True, stored, results, reply)
        return InputVerdict(False, served, _applied(_results(findings), {"mask"} if served != text else set()))

    def check_chunks(self, chunks: Sequence[str]) -> list[ChunkVerdict]:
        chunks = list(chunks)
        if not self.config.enabled or not chunks or self.retrieval_rails is None:
            return [ChunkVerdict(i, False, c) for i, c in enumerate(chunks)]
        messages = [{"role": "context", "content": {"relevant_chunks": chunks}}, {"role": "user", "content": "."}]
        response = self._generate(self.retrieval_rails, messages, "input", ["relevant_chunks"])
        served = (response.output_data or {}).get("relevant_chunks")
        if not isinstance(served, list) or len(served) != len(chunks):
            served = list(chunks)  # the flows did not assign the checked chunks: they go out as retrieved
        return [_chunk_verdict(i, chunk, item) for i, (chunk, item) in enumerate(zip(chunks, served))]

    def check_output(self, answer: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        if not self.config.enabled:
            return OutputVerdict(answer, False, None)
        messages: list[dict[str, Any]] = []
        if contexts:
            messages.append({"role": "context", "content": {"relevant_chunks": "\n\n".join(contexts)}})
        messages += [{"role": "user", "content": "."}, {"role": "assistant", "content": answer}]
        response = self._generate(self.rails, messages, "output", OUTPUT_VARS)
        data = response.output_data or {}
        findings = data.get("verdict") if isinstance(data.get("verdict"), dict) else {}
        served = data.get("bot_message")
        served = served if isinstance(served, str) else (_last_content(response) or answer)
        stopped = _stopped_by(response)
        replaced = data.get("ragtune_action") == "replace" or stopped is not None
        if stopped is not None:
            served = _last_content(response) or self.config.refusal_message
        applied = {"replace", "mask"} if replaced else ({"mask"} if served != answer else set())
        results = _applied(_results(findings), applied)
        if replaced and not any(r.acted and r.action == "replace" for r in results):
            results.append(RailResult("flow", True, "replace", 1.0, stopped or "ragtune_action"))
        return OutputVerdict(served, replaced, findings.get("grounded"), results, list(findings.get("unsupported") or []))

    def check_unit(self, so_far: str, unit: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        """A streamed unit's checks are the Guard's own (a flow per unit would cost ~20 ms each); the whole answer
        then takes the NeMo output flows in `check_output` before anything held back is released."""
        return self.guard.check_unit(so_far, unit, contexts)

    def mask_output_text(self, text: str) -> str:
        return self.guard.mask_output_text(text)

    def output_stream(self):
        """Token-level masking cannot wait for a flow per token: the Guard's streaming masker does it,
        and the whole answer then passes the NeMo output rails in `check_output`."""
        return self.guard.output_stream()

    def close(self) -> None:
        self._spill.shutdown(wait=False)


def _results(findings: dict[str, Any]) -> list[RailResult]:
    return [RailResult(**r) for r in findings.get("results") or []]


def _applied(results: list[RailResult], applied: set[str]) -> list[RailResult]:
    """The findings as served: one whose action the flows did not apply is logged as passed."""
    return [r if not r.acted or r.action in applied else RailResult.passed(r.rail, r.score, "not applied by the flows")
            for r in results]


def _chunk_verdict(index: int, chunk: str, item: Any) -> ChunkVerdict:
    """The served verdict of one chunk from what the retrieval flows left for it: the action's verdict dict
    (applied), a text (served as given) or None (left out)."""
    if item is None:
        return ChunkVerdict(index, True, "", [RailResult("flow", True, "drop", 1.0, "retrieval flow")])
    if isinstance(item, str):
        return ChunkVerdict(index, False, chunk) if item == chunk else \
            ChunkVerdict(index, False, item, [RailResult("flow", True, "mask", 1.0, "retrieval flow")])
    if isinstance(item, dict):
        results = [RailResult(**r) for r in item.get("results") or []]
        if item.get("dropped"):
            return ChunkVerdict(index, True, "", results)
        return ChunkVerdict(index, False, str(item.get("text", chunk)), results)
    return ChunkVerdict(index, False, chunk)


def _stopped_by(response) -> str | None:
    """The rail that stopped the flows (NeMo's own notion of blocked), or None."""
    for rail in (response.log.activated_rails if response.log else None) or []:
        if rail.stop:
            return rail.name
    return None


def _last_content(response) -> str:
    if isinstance(response.response, list) and response.response:
        return str(response.response[-1].get("content") or "")
    return response.response if isinstance(response.response, str) else ""
