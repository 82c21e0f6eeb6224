"""The protocol every generation backend implements, and the request it takes.

Backends are synchronous and blocking: `stream` yields text pieces as the model produces them.
The chat service runs them on worker threads (inference never blocks the event loop) and sets
`cancel` when the client goes away; a backend checks it between tokens and stops promptly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Iterator, Protocol, runtime_checkable


class GeneratorError(RuntimeError):
    """A generation that cannot run (unknown adapter, unreachable server); the message is for users."""


class UnknownAdapterError(GeneratorError):
    pass


def require_adapter(name: str | None, resident: list[str]) -> None:
    """None is the base model; any other name must be resident."""
    if name is not None and name not in resident:
        raise UnknownAdapterError(f"unknown adapter {name!r}; loaded: {', '.join(resident) or 'none'}")


@dataclass
class GenerationRequest:
    prompt: str  # fully rendered by assistant.prompt; backends add nothing (no chat template)
    max_new_tokens: int
    stop: list[str] = field(default_factory=list)  # generation ends before the first occurrence
    adapter: str | None = None  # None = the base model
    temperature: float = 0.0  # 0 = greedy
    seed: int | None = None
    stop_repeats: bool = False  # also end before a line that repeats an earlier one (runtime/repeats.py)
    # The answer starts on the cue's line ("Answer: ..."): no line break as the first token. After "Answer:" Gemma 3
    # 270M sometimes writes "\nAnswer:" and loops on it (5 of 120 Contoso dev answers came out empty). Backends that
    # cannot steer single tokens (OpenVINO GenAI's pipeline, an OpenAI-compatible server) ignore it.
    inline_start: bool = False


@dataclass
class GenerationStats:
    """Filled in by `stream` as it runs; read after the iterator is exhausted."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""  # "stop" (EOS or stop sequence), "length" (max_new_tokens), "cancelled"


@runtime_checkable
class Generator(Protocol):
    name: str  # model identifier reported in answers and metrics
    context_window: int  # prompt + completion budget, in this model's tokens

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model's tokenizer (no special tokens)."""
        ...

    def adapters(self) -> list[str]:
        """Names of the LoRA adapters resident and selectable per request."""
        ...

    def load_adapter(self, name: str, path: str) -> None:
        """Make an adapter resident under `name` without reloading the base model."""
        ...

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        """Yield the completion piece by piece; stop sequences are never yielded."""
        ...

    def close(self) -> None:
        ...
