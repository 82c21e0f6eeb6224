"""The Guard run through NeMo Guardrails: the Colang flows in guardrails/config decide, our actions check.

`NemoGuard` has the Guard's interface, so the chat service does not know which engine it has. Input
and output rails go through `LLMRails.generate_async` with only that rail type enabled (no LLM is
called) and the action's verdict comes back through `output_vars`. The retrieval rail is the Guard's
own call: NeMo runs retrieval rails only around its own knowledge base, and ragtune retrieves itself.

NeMo is async and the chat service's input check is not (it runs before the message is stored),
so the rails run on one private event loop thread; a check costs ~5 ms more than the Guard alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Sequence

from guardrails.guard import Guard
from guardrails.verdict import ChunkVerdict, InputVerdict, OutputVerdict, RailResult


class NemoGuard:
    def __init__(self, guard: Guard):
        os.environ.setdefault("NEMO_GUARDRAILS_NO_USAGE_STATS", "1")
        # NeMo logs ~30 INFO lines of its event loop per request (15 MB in a 2-minute soak); our audit log and
        # metrics say what the rails did. Its warnings and errors still show.
        logging.getLogger("nemoguardrails").setLevel(logging.WARNING)
        from guardrails.actions import load_rails

        self.guard = guard
        self.config = guard.config
        self.rails = load_rails(guard)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="nemo-guardrails", daemon=True).start()

    def _run(self, messages: list[dict[str, Any]], rail: str) -> dict[str, Any]:
        options = {"rails": [rail], "output_vars": ["verdict"]}
        future = asyncio.run_coroutine_threadsafe(self.rails.generate_async(messages=messages, options=options), self._loop)
        response = future.result(timeout=30)
        verdict = (response.output_data or {}).get("verdict")
        if not isinstance(verdict, dict):
            raise RuntimeError(f"the NeMo {rail} rail returned no verdict (check guardrails/config)")
        return verdict

    def check_input(self, text: str) -> InputVerdict:
        if not self.config.enabled:
            return InputVerdict(False, text)
        v = self._run([{"role": "user", "content": text}], "input")
        return InputVerdict(v["blocked"], v["text"], _results(v), v.get("reply"))

    def check_chunks(self, chunks: Sequence[str]) -> list[ChunkVerdict]:
        return self.guard.check_chunks(chunks)

    def check_output(self, answer: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        if not self.config.enabled:
            return OutputVerdict(answer, False, None)
        messages: list[dict[str, Any]] = []
        if contexts:
            messages.append({"role": "context", "content": {"relevant_chunks": "\n\n".join(contexts)}})
        messages += [{"role": "user", "content": "."}, {"role": "assistant", "content": answer}]
        v = self._run(messages, "output")
        return OutputVerdict(v["text"], v["replaced"], v["grounded"], _results(v), v.get("unsupported") or [])

    def check_unit(self, so_far: str, unit: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        return self.guard.check_unit(so_far, unit, contexts)  # per streamed unit; the whole answer takes the flows

    def mask_output_text(self, text: str) -> str:
        return self.guard.mask_output_text(text)

    def output_stream(self):
        """Token-level masking cannot wait for a flow per token: the Guard's streaming masker does it,
        and the whole answer then passes the NeMo output rails in `check_output`."""
        return self.guard.output_stream()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def _results(verdict: dict[str, Any]) -> list[RailResult]:
    return [RailResult(**r) for r in verdict.get("results") or []]
