"""Builds the configured generator; the transformers and openai backends import lazily (torch, httpx)."""

from __future__ import annotations

from assistant.runtime.base import Generator
from assistant.settings import Settings


def build_generator(settings: Settings) -> Generator:
    g = settings.generator
    if g.mode == "fake":
        from assistant.runtime.fake import FakeGenerator

        return FakeGenerator(g.context_window_tokens, g.fake_delay_s, g.adapters)
    if g.mode == "openai":
        from assistant.runtime.openai_backend import OpenAIGenerator

        return OpenAIGenerator(g)
    from assistant.runtime.transformers_backend import TransformersGenerator

    return TransformersGenerator(g, settings.models_dir)
