"""The fast embedded backend: OpenVINO GenAI's LLMPipeline over an export of the same checkpoint.

The model is the transformers checkpoint (the cached GGUF conversion) exported once to OpenVINO IR
(openvino_export.py). Decoding runs inside GenAI's C++ loop on a worker thread; a token streamer
(`_Tokens`) hands each token back through a queue, and returns STOP when the cancel event is set or a
stop sequence appears, so cancel costs at most the token in flight. Text is decoded from the whole
completion each step (a character may span tokens) and passed through our StopScanner: stop text
is never yielded.

LoRA adapters (the registry's peft safetensors) are applied per `generate` call. Two traps:
1. GenAI ignores `lora_alpha` in adapter_config.json and scales by the alpha it is given, so we pass
   the peft scale `lora_alpha / r` (`/ sqrt(r)` with rsLoRA).
2. The paged-attention backend's prefix cache reuses KV computed under another adapter for the same
   prompt prefix (wrong tokens after an adapter switch); the stateful SDPA backend starts every
   generation from an empty cache, so it is forced here (`ATTENTION_BACKEND="SDPA"`).
GenAI fixes the adapter set when the pipeline is built (an adapter unknown at construction cannot be
selected later), so `load_adapter` after start drops the pipeline and the next generation recompiles it
with the whole set (one compile for any number of loads, e.g. the registry's versions at start; its
cost is measured in README "Measured numbers"). Adapters stay host-side safetensors, shared by aliases.

One lock serialises generations and rebuilds: GenAI's stateful pipeline holds one KV state.
Precision: on CPUs with AMX/AVX512-BF16 the CPU plugin computes in bfloat16 with a uint8 KV cache unless
`generator.openvino_precision` is `f32` (float32 math and cache: closest to transformers, several times slower).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from pathlib import Path
from typing import Iterator

from assistant import integrity
from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError, require_adapter
from assistant.runtime.checkpoint import resolve_model_dir
from assistant.runtime.openvino_export import ensure_exported
from assistant.runtime.stops import StopScanner
from assistant.settings import GeneratorSettings

log = logging.getLogger(__name__)

_DONE = object()


def adapter_alpha(path: Path) -> float:
    """The scale peft applies to B·A (GenAI multiplies by exactly the alpha it is given)."""
    config = json.loads((path / "adapter_config.json").read_text())
    rank, lora_alpha = int(config.get("r", 8)), float(config.get("lora_alpha", 8))
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise GeneratorError(f"adapter at {path}: per-module rank_pattern/alpha_pattern is not supported by the "
                             "openvino backend (use generator.mode=transformers)")
    return lora_alpha / (math.sqrt(rank) if config.get("use_rslora") else rank)


class OpenVINOGenerator:
    def __init__(self, settings: GeneratorSettings, cache_dir: Path):
        import openvino_genai

        self.settings, self.genai = settings, openvino_genai
        checkpoint = resolve_model_dir(settings.model, cache_dir)
        self.directory = ensure_exported(checkpoint, cache_dir, settings.openvino_weights)
        self.tokenizer = openvino_genai.Tokenizer(str(self.directory))
        self.name = Path(settings.model).name if Path(settings.model).exists() else settings.model
        config = json.loads((self.directory / "config.json").read_text())
        positions = config.get("max_position_embeddings") or settings.context_window_tokens
        self.context_window = min(settings.context_window_tokens, positions)
        generation = self.directory / "generation_config.json"
        eos = json.loads(generation.read_text()).get("eos_token_id") if generation.is_file() else None
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        self.eos_ids.add(self.tokenizer.get_eos_token_id())
        self.ignore_eos = False  # benches only: decode the full max_new_tokens (like min_new_tokens in transformers)
        self._lock = threading.Lock()
        self._adapters: dict[str, str] = {}  # name -> directory, as the transformers backend keeps them
        self._loaded: dict[str, tuple[object, float]] = {}  # name -> (GenAI Adapter, peft scale)
        self._pipeline, self._closed = None, False
        for name, path in settings.adapters.items():
            self._register(name, path)
        self._rebuild()  # compile now: the first request should not pay for it

    # --- protocol -----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return int(self.tokenizer.encode(text, add_special_tokens=False).input_ids.get_shape()[1])

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def load_adapter(self, name: str, path: str) -> None:
        with self._lock:
            self._register(name, path)
            self._pipeline = None  # rebuilt with the new adapter set by the next generation (once for many loads)

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        require_adapter(request.adapter, self.adapters())
        stats = stats if stats is not None else GenerationStats()
        with self._lock:
            if self._pipeline is None:
                self._rebuild()
            yield from self._decode(request, cancel, stats)

    def close(self) -> None:
        with self._lock:
            self._pipeline, self._closed = None, True

    def generate_batch(self, requests: list[GenerationRequest]) -> list[tuple[str, GenerationStats]]:
        """The evaluation and synthesis path: greedy requests for one adapter, with the same stops and token cap,
        decoded as one left-padded batch by GenAI's stateful pipeline (a full Contoso dev scorecard in 10 minutes
        at 8, README "Measured numbers"). With the export's additive masks a padded row attends to nothing it should not,
        so each answer equals the one `stream` serves (tests/test_openvino_backend.py). Anything else: one by one."""
        shared = {(r.adapter, tuple(r.stop), r.max_new_tokens, r.temperature > 0) for r in requests}
        if len(requests) < 2 or len(shared) > 1 or requests[0].temperature > 0:
            return [self._one(request) for request in requests]
        require_adapter(requests[0].adapter, self.adapters())
        # Left padding whatever the tokenizer's default (a right-padded row would continue from its pad tokens).
        inputs = self.tokenizer.encode([r.prompt for r in requests], padding_side="left")
        counts = [int(n) for n in inputs.attention_mask.data.sum(axis=1)]
        if max(counts) >= self.context_window:
            raise GeneratorError(f"a prompt ({max(counts)} tokens) fills the {self.context_window}-token window")
        budget = min(requests[0].max_new_tokens, self.context_window - max(counts))
        with self._lock:
            if self._pipeline is None:
                self._rebuild()
            # No GenAI stop_strings: in a batch they cut rows short and mixed one row's tokens into another's
            # (2026.4.1, seen on real prompts); each row runs to EOS or the cap and is cut at its stop here.
            rows = self._pipeline.generate(inputs, self._config(requests[0], budget)).tokens
        results = []
        for request, prompt_tokens, row in zip(requests, counts, rows):
            tokens = [int(t) for t in row if self.ignore_eos or int(t) not in self.eos_ids]
            scanner = StopScanner(request.stop, request.stop_repeats)
            text = scanner.feed(self.tokenizer.decode(tokens, skip_special_tokens=True))
            text += "" if scanner.stopped else scanner.flush()
            stats = GenerationStats(prompt_tokens=prompt_tokens, completion_tokens=len(tokens))
            if scanner.stopped:
                stats.completion_tokens = self.count_tokens(text)  # what was served, not what ran past the stop
            stats.finish_reason = "stop" if scanner.stopped or len(tokens) < budget else "length"
            results.append((text, stats))
        return results

    def _one(self, request: GenerationRequest) -> tuple[str, GenerationStats]:
        stats = GenerationStats()
        text = "".join(self.stream(request, threading.Event(), stats))
        return text, stats

    # --- internals ----------------------------------------------------------------------------
    def _register(self, name: str, path: str) -> None:
        directory = Path(path)
        if not (directory / "adapter_config.json").is_file():
            raise GeneratorError(f"adapter {name!r}: {path} holds no adapter_config.json")
        weights = directory / "adapter_model.safetensors"
        if not weights.is_file():
            raise GeneratorError(f"adapter {name!r}: {path} holds no adapter_model.safetensors (adapters load from "
                                 "safetensors only)")
        try:  # against the hashes the registry recorded at publish (a directory without a record is loaded as is)
            if not integrity.verify_adapter_dir(directory, f"adapter {name!r}"):
                log.info("adapter %r (%s) has no recorded hashes; loading it unverified", name, path)
        except integrity.IntegrityError as exc:
            raise GeneratorError(f"refusing to load {exc}") from None
        alpha = adapter_alpha(directory)
        same = next((adapter for p, (adapter, _) in self._loaded.items() if self._adapters[p] == path), None)
        self._loaded[name] = (same or self.genai.Adapter(str(weights)), alpha)  # an alias shares the weights
        self._adapters[name] = path
        log.info("adapter %r resident (%s, scale %.3g)", name, path, alpha)

    def _rebuild(self) -> None:
        """(Re)compile the pipeline with every resident adapter declared; caller holds the lock (or is __init__)."""
        if self._closed:
            raise GeneratorError("the generator is closed")
        started = time.monotonic()
        kwargs = {"ATTENTION_BACKEND": "SDPA"}  # trap 2 above: no prefix cache shared across adapters
        if self._adapters:
            kwargs["adapters"] = self.genai.AdapterConfig([adapter for adapter, _ in self._loaded.values()])
        if self.settings.openvino_precision == "f32":  # the CPU plugin would pick bf16 math and a u8 KV cache
            kwargs.update(INFERENCE_PRECISION_HINT="f32", KV_CACHE_PRECISION="f32")
        if self.settings.openvino_kv_cache != "auto":
            kwargs["KV_CACHE_PRECISION"] = self.settings.openvino_kv_cache
        if self.settings.openvino_threads:
            kwargs["INFERENCE_NUM_THREADS"] = self.settings.openvino_threads
        self._pipeline = self.genai.LLMPipeline(str(self.directory), "CPU", **kwargs)
        log.info("OpenVINO pipeline ready with %d adapter(s) in %.1f s", len(self._adapters), time.monotonic() - started)

    def _config(self, request: GenerationRequest, budget: int):
        config = self._pipeline.get_generation_config()
        config.max_new_tokens = budget
        config.apply_chat_template = False  # prompts arrive fully rendered
        config.ignore_eos = self.ignore_eos
        config.stop_strings = set()  # our StopScanner handles stops (and never yields them)
        config.do_sample = request.temperature > 0
        if config.do_sample:
            config.temperature, config.top_k, config.top_p = request.temperature, 0, 1.0
            if request.seed is not None:
                config.rng_seed = request.seed
        if self._adapters:
            if request.adapter is None:
                config.adapters = self.genai.AdapterConfig()  # base model: every adapter's alpha 0
            else:
                adapter, alpha = self._loaded[request.adapter]
                config.adapters = self.genai.AdapterConfig(adapter, alpha)  # trap 1: peft's scale, not lora_alpha
        return config

    def _decode(self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats) -> Iterator[str]:
        inputs = self.tokenizer.encode(request.prompt)  # with BOS, as transformers' tokenizer adds it
        stats.prompt_tokens = int(inputs.input_ids.get_shape()[1])
        room = self.context_window - stats.prompt_tokens
        if room <= 0:
            raise GeneratorError(f"the prompt ({stats.prompt_tokens} tokens) fills the {self.context_window}-token window")
        budget = min(request.max_new_tokens, room)
        config = self._config(request, budget)
        tokens: queue.Queue = queue.Queue()
        halt = threading.Event()  # set when our consumer is done early (stop sequence, closed iterator)
        streamer = _Tokens(tokens, cancel, halt, set() if self.ignore_eos else self.eos_ids)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._pipeline.generate(inputs, config, streamer)
            except BaseException as exc:  # surfaced on the consuming thread
                failure.append(exc)
            finally:
                tokens.put(_DONE)

        worker = threading.Thread(target=run, name="openvino-generate", daemon=True)
        worker.start()
        scanner, generated, emitted = StopScanner(request.stop, request.stop_repeats), [], ""
        stats.finish_reason = "length"
        try:
            while (token := tokens.get()) is not _DONE:
                if cancel.is_set():
                    break  # tokens GenAI queued ahead of us are dropped: nothing more reaches the client
                generated.append(token)
                stats.completion_tokens = len(generated)
                text = self.tokenizer.decode(generated, skip_special_tokens=True)
                if text.endswith("\ufffd"):
                    continue  # half a multi-byte character; wait for the rest
                piece = scanner.feed(text[len(emitted):])
                emitted = text
                if piece:
                    yield piece
                if scanner.stopped:
                    halt.set()
                    break
        finally:
            halt.set()
            worker.join()
        if failure:
            raise GeneratorError(f"OpenVINO generation failed: {failure[0]}") from failure[0]
        if cancel.is_set() and not scanner.stopped:
            stats.finish_reason = "cancelled"
            return
        if scanner.stopped or streamer.saw_eos or len(generated) < budget:
            stats.finish_reason = "stop"
        if not scanner.stopped:
            rest = self.tokenizer.decode(generated, skip_special_tokens=True)[len(emitted):] if generated else ""
            tail = scanner.feed(rest) + scanner.flush()
            if scanner.stopped:
                stats.finish_reason = "stop"
            if tail:
                yield tail


class _Tokens:
    """A GenAI token streamer: queues each generated token; asks GenAI to stop on cancel or halt."""

    def __new__(cls, tokens: queue.Queue, cancel: threading.Event, halt: threading.Event, eos_ids: set[int]):
        import openvino_genai

        class Streamer(openvino_genai.StreamerBase):
            def __init__(self):
                super().__init__()
                self.saw_eos = False

            def write(self, token):
                for t in token if isinstance(token, list) else [token]:
                    if t in eos_ids:
                        self.saw_eos = True
                        return openvino_genai.StreamingStatus.STOP
                    tokens.put(int(t))
                if cancel.is_set() or halt.is_set():
                    return openvino_genai.StreamingStatus.CANCEL
                return openvino_genai.StreamingStatus.RUNNING

            def end(self):
                pass

        return Streamer()
