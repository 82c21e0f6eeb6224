"""A deterministic generator for tests: no model, same prompt → same answer, in whitespace tokens.

It behaves like a well-trained assistant would on our prompt format: it answers with the first
sentence of document [1] and cites it, or gives the refusal when no document was supplied. An
adapter name prefixes the answer so tests can tell adapters apart.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Iterator

from assistant import prompt
from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError, require_adapter
from assistant.runtime.stops import StopScanner

_FIRST_DOC = re.compile(r"^\[1\] [^\n]*\n(.+?)(?:\n\n|\n\[2\] |\Z)", re.MULTILINE | re.DOTALL)


class FakeGenerator:
    def __init__(self, context_window: int = 2048, delay_s: float = 0.0, adapters: dict[str, str] | None = None):
        self.name = "fake"
        self.context_window = context_window
        self.delay_s = delay_s  # pause per token, in seconds, to test streaming and cancellation
        self._adapters: dict[str, str] = {}
        for name, path in (adapters or {}).items():
            self.load_adapter(name, path)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def load_adapter(self, name: str, path: str) -> None:
        if not Path(path).is_dir():
            raise GeneratorError(f"adapter {name!r}: {path} is not a directory")
        self._adapters[name] = path

    def completion(self, request: GenerationRequest) -> str:
        """The whole answer this prompt gets, before caps and stop sequences."""
        if request.prompt.endswith("\nQuestion:") and "\nFact: " in request.prompt:
            return self._teacher_completion(request.prompt)
        match = _FIRST_DOC.search(request.prompt.split("Documents:", 1)[-1])
        if match is None:
            answer = prompt.REFUSAL
        else:
            sentence = re.split(r"(?<=[.!?])\s", " ".join(match.group(1).split()), maxsplit=1)[0]
            answer = f"{sentence} [1]"
        if request.adapter:
            answer = f"({request.adapter}) {answer}"
        return answer

    @staticmethod
    def _teacher_completion(text: str) -> str:
        """A synthetic-QA teacher prompt (finetune.teacher) gets a question about the fact's longest words."""
        fact = text.rsplit("\nFact: ", 1)[1].split("\n", 1)[0]
        words = sorted({w.strip(".,;:()[]").lower() for w in fact.split()}, key=lambda w: (-len(w), w))[:3]
        return f"What does the policy say about {' and '.join(words)}?\nShort answer: {fact}"

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        require_adapter(request.adapter, self.adapters())
        stats = stats if stats is not None else GenerationStats()
        stats.prompt_tokens = self.count_tokens(request.prompt)
        scanner = StopScanner(request.stop, request.stop_repeats)
        words = self.completion(request).split(" ")
        stats.finish_reason = "stop"
        for index, word in enumerate(words):
            if cancel.is_set():
                stats.finish_reason = "cancelled"
                return
            if index >= request.max_new_tokens:
                stats.finish_reason = "length"
                break
            if self.delay_s:
                time.sleep(self.delay_s)
            stats.completion_tokens += 1
            text = scanner.feed((" " if index else "") + word)
            if text:
                yield text
            if scanner.stopped:
                return
        tail = scanner.flush()
        if tail:
            yield tail

    def close(self) -> None:
        pass
