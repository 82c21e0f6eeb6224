"""The embedded backend: a local transformers causal LM with resident LoRA adapters (peft).

Decoding is our own loop over the KV cache rather than `model.generate` + a streamer thread: it
yields each token on the calling thread (already a worker thread of the inference queue), checks
the cancel event between tokens and stops at a stop sequence without an extra thread per request.
Because the loop itself decides when to stop, no StoppingCriteria is needed: a stop sequence or a
set cancel event ends it before the next forward pass (cancel costs at most the pass in flight).
Greedy answers decode by prompt lookup (prompt_lookup.py): drafts copied from the prompt are checked
several tokens per pass, with the tokens one-at-a-time decoding gives. Several greedy answers are decoded
together where that pays (batched_lookup.py): concurrent streams by one decode thread (decode_loop.py), the
scorecard's and the teacher's batches by `decode_together`.

Adapters are switched per request with peft's `set_adapter` / `disable_adapter`, which mutate the
shared model: two threads generating at once would each run with the other's adapter. So one lock
serialises generations and adapter loads: the locked path holds it while the caller consumes the stream,
the decode thread for each batched pass (so answers decoded together share one adapter).
"""

from __future__ import annotations

import logging
import threading
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Callable, Iterator

from assistant import integrity
from assistant.runtime import batched_lookup
from assistant.runtime.base import GenerationRequest, GenerationStats, GeneratorError, require_adapter
from assistant.runtime.checkpoint import resolve_model_dir
from assistant.runtime.completion import Completion
from assistant.runtime.decode_loop import DecodeLoop, decode_all
from assistant.runtime.greedy_head import GreedyHead, native_bf16
from assistant.runtime.prompt_lookup import PromptLookup
from assistant.runtime.stops import StopScanner
from assistant.settings import GeneratorSettings

log = logging.getLogger(__name__)


class TransformersGenerator:
    def __init__(self, settings: GeneratorSettings, cache_dir: Path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.settings = settings
        self.torch = torch
        directory = resolve_model_dir(settings.model, cache_dir)
        if not any(directory.glob("*.safetensors")):
            raise GeneratorError(f"{directory} holds no safetensors weights (pickle formats such as pytorch_model.bin "
                                 "are never loaded)")
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        dtype = getattr(torch, settings.dtype)
        # use_safetensors: never fall back to a pickled pytorch_model.bin (resolve_model_dir checked the hashes).
        self.model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, use_safetensors=True)
        self.model = self.model.to(settings.device).eval()
        self.name = Path(settings.model).name if Path(settings.model).exists() else settings.model
        positions = getattr(self.model.config, "max_position_embeddings", None) or settings.context_window_tokens
        self.context_window = min(settings.context_window_tokens, positions)
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            self.eos_ids.add(self.tokenizer.eos_token_id)
        self._lock = threading.Lock()
        self._adapters: dict[str, str] = {}
        self._line_breaks: list[int] | None = None  # see line_break_ids
        self.lookup = (PromptLookup(settings.prompt_lookup_tokens, settings.prompt_lookup_max_tokens, self.eos_ids,
                                    head=self._greedy_head())
                       if settings.prompt_lookup_tokens else None)
        # Concurrent greedy streams decoded together by one thread (decode_loop.py).
        self._loop = DecodeLoop(self, settings.batch_streams) if settings.batch_streams > 1 and self._together() else None
        for name, path in settings.adapters.items():
            self.load_adapter(name, path)

    def _greedy_head(self) -> GreedyHead | None:
        """The bfloat16 shortlist for prompt lookup's picks (greedy_head.py), where the CPU multiplies bfloat16
        natively; elsewhere a bfloat16 product is slower than float32, so the float32 output layer alone."""
        if not self.settings.bf16_shortlist or self.settings.device != "cpu":
            return None
        if not native_bf16():
            log.info("generator: this CPU has no bfloat16 matrix units; prompt lookup uses the float32 output layer")
            return None
        return GreedyHead.of(self.model, self.settings.bf16_shortlist)

    # --- protocol -----------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def load_adapter(self, name: str, path: str) -> None:
        from peft import PeftModel

        if not (Path(path) / "adapter_config.json").is_file():
            raise GeneratorError(f"adapter {name!r}: {path} holds no adapter_config.json")
        if not (Path(path) / "adapter_model.safetensors").is_file():
            raise GeneratorError(f"adapter {name!r}: {path} holds no adapter_model.safetensors (adapters load from "
                                 "safetensors only)")
        try:  # against the hashes the registry recorded at publish (a directory without a record is loaded as is)
            if not integrity.verify_adapter_dir(Path(path), f"adapter {name!r}"):
                log.info("adapter %r (%s) has no recorded hashes; loading it unverified", name, path)
        except integrity.IntegrityError as exc:
            raise GeneratorError(f"refusing to load {exc}") from None
        with self._lock:
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(path, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name).eval()
            self._adapters[name] = path
        log.info("adapter %r resident (%s)", name, path)

    def stream(
        self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats | None = None
    ) -> Iterator[str]:
        require_adapter(request.adapter, self.adapters())
        stats = stats if stats is not None else GenerationStats()
        if self._loop is not None and self.lookup is not None and request.temperature <= 0:
            yield from self._loop.stream(request, cancel, stats)
            return
        with self._lock, self.torch.inference_mode(), self._adapter(request.adapter):
            yield from self._decode(request, cancel, stats)

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
        with self._lock:
            self.model = None

    def generate_batch(self, requests: list[GenerationRequest]) -> list[tuple[str, GenerationStats]]:
        """Greedy answers for many prompts at once. With prompt lookup on a Gemma 3 CPU model: `decode_together`,
        all of them at once, each with its streamed tokens. Otherwise padded batches (model.generate): on a CPU a
        decode step costs about as much for eight sequences as for one, but numerics differ from `stream` by the
        padding (left padding + attention mask), which can flip a near-tie between two tokens.
        """
        if not requests:
            return []
        adapter = requests[0].adapter
        if any(r.adapter != adapter for r in requests) or any(r.temperature > 0 for r in requests):
            raise GeneratorError("generate_batch takes greedy requests for one adapter")
        if self._together():
            return self.decode_together(requests, len(requests))
        if len({r.inline_start for r in requests}) > 1:  # one suppression setting per padded batch
            inline = [i for i, r in enumerate(requests) if r.inline_start]
            rest = [i for i, r in enumerate(requests) if not r.inline_start]
            done = dict(zip(inline, self.generate_batch([requests[i] for i in inline])))
            done.update(zip(rest, self.generate_batch([requests[i] for i in rest])))
            return [done[i] for i in range(len(requests))]
        require_adapter(adapter, self.adapters())
        budget = max(r.max_new_tokens for r in requests)
        self.tokenizer.padding_side = "left"  # generation continues from the right edge of every row
        encoded = self.tokenizer([r.prompt for r in requests], return_tensors="pt", padding=True).to(self.settings.device)
        width = int(encoded["input_ids"].shape[1])
        if width + budget > self.context_window:
            raise GeneratorError(f"a prompt ({width} tokens) plus {budget} new tokens exceeds the {self.context_window}-token window")
        with self._lock, self.torch.inference_mode(), self._adapter(adapter):
            out = self.model.generate(
                **encoded, max_new_tokens=budget, do_sample=False, top_p=None, top_k=None,
                stopping_criteria=[_StopStrings(self.tokenizer, requests, width)],
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(self.eos_ids),
                begin_suppress_tokens=self.line_break_ids() if requests[0].inline_start else None,
            )
        results = []
        for row, request in enumerate(requests):
            tokens = [int(t) for t in out[row, width:]]
            ended = next((i for i, t in enumerate(tokens) if t in self.eos_ids or t == self.tokenizer.pad_token_id), None)
            tokens = tokens[:ended] if ended is not None else tokens
            scanner = StopScanner(request.stop, request.stop_repeats)
            text = scanner.feed(self.tokenizer.decode(tokens[: request.max_new_tokens], skip_special_tokens=True))
            text += "" if scanner.stopped else scanner.flush()
            stats = GenerationStats(int(encoded["attention_mask"][row].sum()), min(len(tokens), request.max_new_tokens))
            stats.finish_reason = "stop" if scanner.stopped or (ended is not None and ended <= request.max_new_tokens) else "length"
            results.append((text, stats))
        return results

    def decode_together(self, requests: list[GenerationRequest], width: int = 8,
                        on_done: Callable[[int], None] | None = None) -> list[tuple[str, GenerationStats]]:
        """Greedy answers for many requests of one adapter, up to `width` decoded at once (batched_lookup.py):
        each prompt is prefilled alone, as `stream` does, then one pass per step serves every unfinished answer,
        and a finished answer's place goes to the next request. Each answer ends where its stream would
        (Completion), with the same tokens. Without prompt lookup (or for a model it does not support), padded
        batches of `width` (generate_batch)."""
        if not requests:
            return []
        if not self._together():
            results = []
            for start in range(0, len(requests), width):
                results += self.generate_batch(requests[start : start + width])
                if on_done:
                    on_done(len(requests[start : start + width]))
            return results
        adapter = requests[0].adapter
        if any(r.adapter != adapter for r in requests) or any(r.temperature > 0 for r in requests):
            raise GeneratorError("decode_together takes greedy requests for one adapter")
        require_adapter(adapter, self.adapters())
        return decode_all(self, requests, width, on_done)

    def _together(self) -> bool:
        """Whether answers can be decoded together: prompt lookup on, a Gemma 3 model, on the CPU (the batched pass
        builds its index tensors there)."""
        return self.lookup is not None and self.settings.device == "cpu" and batched_lookup.supports(self.model)

    def _encode(self, request: GenerationRequest):
        """The prompt's ids and the completion's token budget (the cap, or what the context window leaves)."""
        ids = self.tokenizer(request.prompt, return_tensors="pt")["input_ids"].to(self.settings.device)
        room = self.context_window - int(ids.shape[1])
        if room <= 0:
            raise GeneratorError(f"the prompt ({int(ids.shape[1])} tokens) fills the {self.context_window}-token window")
        return ids, min(request.max_new_tokens, room)

    def _start_answer(self, together, request: GenerationRequest) -> tuple:
        ids, budget = self._encode(request)
        past, first = self._prefill(request, ids)
        completion = Completion(self.tokenizer, self.eos_ids, request, budget)
        text = completion.add(first)
        answer = together.start(ids, past, first, budget)
        answer.done = answer.done or completion.done
        return answer, completion, text, GenerationStats(prompt_tokens=int(ids.shape[1]))

    def line_break_ids(self) -> list[int]:
        """Tokens that are only whitespace with a line break in it ("\n", "\n\n", "\n  " ...), once per model."""
        if self._line_breaks is None:
            pieces = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            # SentencePiece writes a line break as itself and a space as "▁".
            self._line_breaks = [i for i, piece in enumerate(pieces)
                                 if piece and "\n" in piece and not piece.replace("▁", " ").strip()]
        return self._line_breaks

    # --- decoding -----------------------------------------------------------------------------
    def _adapter(self, name: str | None) -> AbstractContextManager:
        """Select `name` (None = the base model) for the duration of one generation; caller holds the lock."""
        from peft import PeftModel

        if not isinstance(self.model, PeftModel):
            return nullcontext()
        if name is None:
            return self.model.disable_adapter()
        self.model.set_adapter(name)
        return nullcontext()

    def _decode(self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats) -> Iterator[str]:
        ids, budget = self._encode(request)
        stats.prompt_tokens = int(ids.shape[1])
        completion = Completion(self.tokenizer, self.eos_ids, request, budget)
        stats.finish_reason = "length"
        if cancel.is_set():  # gone before the prefill
            stats.finish_reason = "cancelled"
            return
        # Tokens are computed lazily: a forward pass runs only when the previous step's tokens are consumed,
        # so a set cancel event or a stop sequence ends decoding before the next pass.
        for token in self._tokens(request, ids, budget):
            if cancel.is_set():
                stats.finish_reason = "cancelled"
                return
            piece = completion.add(token)
            stats.completion_tokens = len(completion.generated)
            if piece:
                yield piece
            if completion.done:
                break
        tail = completion.end(stats)
        if tail:
            yield tail

    def _tokens(self, request: GenerationRequest, ids, budget: int) -> Iterator[int]:
        """The completion's token ids: greedy answers through prompt lookup (same tokens, fewer passes), sampled
        ones a token per pass."""
        torch = self.torch
        sampler = torch.Generator(device=ids.device).manual_seed(request.seed) if request.seed is not None else None
        past, token = self._prefill(request, ids, sampler)
        yield token
        if self.lookup is not None and request.temperature <= 0:
            yield from self.lookup.continue_greedy(self.model, ids, past, token, budget)
            return
        while True:  # the consumer stops at EOS, a stop sequence or the budget
            out = self.model(input_ids=torch.tensor([[token]], device=ids.device), past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = self._pick(out.logits[0, -1].float(), request.temperature, sampler)
            yield token

    def _prefill(self, request: GenerationRequest, ids, sampler=None):
        """The prompt's KV cache and the first token."""
        # logits_to_keep=1: only the last position's logits (a 262k vocabulary × every prompt
        # position would cost seconds and hundreds of MB at prefill).
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        logits = out.logits[0, -1].float()
        if request.inline_start:
            logits[self.line_break_ids()] = float("-inf")
        return out.past_key_values, self._pick(logits, request.temperature, sampler)

    def _pick(self, logits, temperature: float, sampler) -> int:
        if temperature <= 0:
            return int(logits.argmax())
        probs = self.torch.softmax(logits / temperature, dim=-1)
        return int(self.torch.multinomial(probs, 1, generator=sampler))


class _StopStrings:
    """Ends each row of a batch where `stream` would: at its first stop sequence or repeated line (a row
    that stops is padded from then on).

    transformers' own `stop_strings` precomputes token-suffix tables that fail on some vocabularies;
    decoding each row's short completion per step costs far less than the forward pass it saves.
    """

    def __init__(self, tokenizer, requests: list[GenerationRequest], prompt_width: int):
        self.tokenizer, self.requests, self.width = tokenizer, requests, prompt_width

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor([_stops_in(text, request) for text, request in zip(texts, self.requests)],
                            device=input_ids.device)


def _stops_in(text: str, request: GenerationRequest) -> bool:
    scanner = StopScanner(request.stop, request.stop_repeats)
    scanner.feed(text)
    return scanner.stopped
