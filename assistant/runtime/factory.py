"""Builds the configured generator; every backend imports lazily (torch, openvino, httpx).

`auto` serves the local model with OpenVINO GenAI when it is installed and the model exports (first token 2-3x
sooner, decoding about 2x faster on a CPU than transformers; adapters' answers drift, so it is opt-in: README
"Measured numbers"), and falls back to the transformers backend with a logged reason otherwise. Training
(finetune/) always uses transformers itself.
"""

from __future__ import annotations

import logging

from assistant.runtime.base import Generator, GeneratorError
from assistant.settings import Settings

log = logging.getLogger(__name__)


def build_generator(settings: Settings) -> Generator:
    g = settings.generator
    if g.mode == "fake":
        from assistant.runtime.fake import FakeGenerator

        return FakeGenerator(g.context_window_tokens, g.fake_delay_s, g.adapters)
    if g.mode == "openai":
        from assistant.runtime.openai_backend import OpenAIGenerator

        return OpenAIGenerator(g)
    if g.mode == "openvino" or (g.mode == "auto" and g.device == "cpu"):  # a GPU device: torch serves it
        try:
            from assistant.runtime.openvino_backend import OpenVINOGenerator
        except ImportError as exc:
            if g.mode == "openvino":
                raise GeneratorError(f"generator.mode is openvino but OpenVINO GenAI is not installed ({exc})") from None
            log.warning("generator: OpenVINO GenAI is not installed (%s); using the transformers backend", exc)
        else:
            try:
                return OpenVINOGenerator(g, settings.models_dir)
            except Exception as exc:
                if g.mode == "openvino" or _not_a_model_problem(exc):
                    raise
                log.warning("generator: OpenVINO cannot serve %s (%s: %s); using the transformers backend",
                            g.model, type(exc).__name__, exc)
    from assistant.runtime.transformers_backend import TransformersGenerator

    return TransformersGenerator(g, settings.models_dir)


def _not_a_model_problem(exc: Exception) -> bool:
    """Errors that transformers would hit too (missing model, bad hashes, bad adapter): report, do not fall back."""
    return isinstance(exc, GeneratorError) and "OpenVINO" not in str(exc)
