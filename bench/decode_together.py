"""Answers decoded together (batched prompt lookup, the scorecard's and synthesis's path) vs one at a time (the
streamed decoding /v1/chat serves), same transformers backend, same real RAG prompts, one run.

    .venv/bin/python bench/decode_together.py [--limit 16] [--widths 4,8,16] [--adapter DIR] [--home DIR]
        [--models DIR] [--plain]

Prompts: Contoso dev questions through ragtune's retrieval and prompt (`ChatService.prepare` +
`generation_request`: the served cap, stops, repeated-line stop, inline start). First every prompt is streamed
alone (prompt lookup, as served; `--plain` adds one token per pass, the decoder without lookup), then the same
prompts go through `decode_together` at each width (answers decoded at once; a finished answer's place goes
to the next prompt). Reported per row: prefill seconds (the prompts' own forward passes, the same work either
way), decode seconds and tok/s (everything after each first token), total, answers identical to the streamed
ones. Writes bench/results/decode_together.json.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import _common as common

from assistant.runtime.base import GenerationRequest, GenerationStats


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=common.CACHE_ROOT / "naive-rag-contoso",
                   help="ragtune home with the Contoso index (ingested if empty)")
    p.add_argument("--models", type=Path, default=Path(".pytest_cache/d/ragtune-models"), help="checkpoint cache")
    p.add_argument("--limit", type=int, default=16, help="Contoso dev answerable questions")
    p.add_argument("--widths", default="4,8,16", help="answers decoded at once (eval.batch_size)")
    p.add_argument("--adapter", type=Path, help="a LoRA adapter directory: answer with it instead of the base model")
    p.add_argument("--plain", action="store_true", help="also stream one token per pass (no prompt lookup)")
    args = p.parse_args()
    from assistant import assembly
    from assistant.chat_service import ChatRequest
    from assistant.settings import load_settings

    common.require_contoso()
    settings = load_settings(profile="default", overrides={
        "home": str(args.home), "generator": {"cache_dir": str(args.models), "mode": "transformers"}})
    retriever = common.contoso_retriever(settings)
    generator = assembly.generator(settings)
    adapter = None
    if args.adapter:
        generator.load_adapter("bench", str(args.adapter))
        adapter = "bench"
    service = assembly.chat_service(settings, retriever, generator)
    requests = []
    for row in common.load_golden()[: args.limit]:
        chat = ChatRequest(row["question"], collections=["contoso"], adapter=adapter)
        prepared = service.prepare(chat)
        if prepared.prompt_text is not None:  # else the retrieval gate answered without the model
            requests.append(service.generation_request(chat, prepared))
    common.timed_stream(generator, GenerationRequest("Question: warm-up?\nAnswer:", 4))

    prefill_s = [0.0]  # the prompts' forward passes, timed inside the backend
    prefill = generator._prefill

    def timed_prefill(*a, **k):
        start = time.perf_counter()
        try:
            return prefill(*a, **k)
        finally:
            prefill_s[0] += time.perf_counter() - start

    generator._prefill = timed_prefill
    rows, results = [], {}

    def record(name: str, texts: list[str], tokens: int, total: float) -> None:
        decode = total - prefill_s[0]
        after_first = tokens - len(texts)
        results[name] = {"answers": len(texts), "tokens": tokens, "prefill_s": prefill_s[0], "decode_s": decode,
                         "decode_tok_s": after_first / decode, "total_s": total,
                         "identical": sum(a == b for a, b in zip(texts, streamed))}
        r = results[name]
        rows.append((name, r["answers"], r["tokens"], f"{r['prefill_s']:.1f}", f"{r['decode_s']:.1f}",
                     f"{r['decode_tok_s']:.1f}", f"{r['total_s']:.1f}", f"{r['identical']} of {r['answers']}"))

    streamed: list[str] = []
    lookup = generator.lookup
    for name in (["plain"] if args.plain else []) + ["streamed"]:
        generator.lookup = None if name == "plain" else lookup
        prefill_s[0], texts, tokens = 0.0, [], 0
        start = time.perf_counter()
        for request in requests:
            stats = GenerationStats()
            texts.append("".join(generator.stream(request, threading.Event(), stats)))
            tokens += stats.completion_tokens
        total = time.perf_counter() - start
        if name == "streamed":
            streamed[:] = texts
        record(name, texts, tokens, total)
    generator.lookup = lookup
    if args.plain:  # compared against the streamed answers, known only now
        results["plain"]["identical"] = sum(a == b for a, b in zip(texts, streamed))
        rows[0] = rows[0][:-1] + (f"{results['plain']['identical']} of {len(texts)}",)
    for width in [int(w) for w in args.widths.split(",")]:
        prefill_s[0] = 0.0
        start = time.perf_counter()
        out = generator.decode_together(requests, width)
        record(f"together x{width}", [t for t, _ in out], sum(s.completion_tokens for _, s in out),
               time.perf_counter() - start)
    common.console.print(common.table(
        f"Decoding {len(requests)} Contoso dev answers ({'adapter' if adapter else 'base model'}): one at a time "
        "(as /v1/chat streams) vs together (eval.batch_size), transformers fp32",
        ["decoder", "answers", "tokens", "prefill s", "decode s", "decode tok/s", "total s", "identical to streamed"],
        rows))
    path = common.write_json("decode_together", {"args": {k: str(v) for k, v in vars(args).items()},
                                                 "results": results, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
