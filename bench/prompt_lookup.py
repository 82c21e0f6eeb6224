"""Prompt-lookup decoding vs one-token-per-pass decoding, same transformers backend, same real RAG prompts, one run.

    .venv/bin/python bench/prompt_lookup.py [--limit 30] [--adapter DIR] [--home DIR] [--models DIR]
        [--short 2] [--long 15]

Prompts: Contoso dev questions (answerable and unanswerable, in file order) through ragtune's own retrieval
and prompt (`ChatService.prepare` + `generation_request`: the served cap, stop sequences, repeated-line
stop and inline start), so each answer is what `/v1/chat` would stream. Each prompt is answered twice,
alternating which decoder goes first: plain (`generator.lookup = None`) and prompt lookup. Reported per
model (base, and `--adapter` if given): decode tok/s = tokens after the first / time after the first
token, summed over answers; time to first token; answers whose text is identical; tokens per forward
pass. Where the CPU multiplies bfloat16, prompt lookup runs twice: with the float32 output layer only
(`lookup-f32`) and with the bfloat16 shortlist (`lookup`, as served: generator.bf16_shortlist), in rotating
order. Writes bench/results/prompt_lookup.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _common as common

from assistant.runtime.base import GenerationRequest


def summarise(runs: list[dict]) -> dict:
    decode_s = sum(r["decode_s"] for r in runs)
    ttfts = sorted(r["ttft_s"] for r in runs)
    return {"answers": len(runs), "tokens": sum(r["tokens"] for r in runs),
            "decode_tok_s": sum(r["decode_tokens"] for r in runs) / decode_s if decode_s else float("nan"),
            "ttft_p50_s": ttfts[len(ttfts) // 2], "total_s": sum(r["total_s"] for r in runs)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=common.CACHE_ROOT / "naive-rag-contoso",
                   help="ragtune home with the Contoso index (ingested if empty)")
    p.add_argument("--models", type=Path, default=Path(".pytest_cache/d/ragtune-models"), help="checkpoint cache")
    p.add_argument("--limit", type=int, default=30, help="Contoso dev questions (0 = all 145)")
    p.add_argument("--adapter", type=Path, help="a LoRA adapter directory, answered with as well")
    p.add_argument("--short", type=int, default=2, help="generator.prompt_lookup_tokens")
    p.add_argument("--long", type=int, default=15, help="generator.prompt_lookup_max_tokens")
    args = p.parse_args()
    from assistant import assembly
    from assistant.chat_service import ChatRequest
    from assistant.settings import load_settings

    common.require_contoso()
    settings = load_settings(profile="default", overrides={
        "home": str(args.home), "generator": {"cache_dir": str(args.models), "mode": "transformers",
                                              "prompt_lookup_tokens": args.short, "prompt_lookup_max_tokens": args.long}})
    retriever = common.contoso_retriever(settings)
    generator = assembly.generator(settings)
    lookup = generator.lookup
    models = [("base", None)]
    if args.adapter:
        generator.load_adapter("bench", str(args.adapter))
        models.append(("adapter", "bench"))
    service = assembly.chat_service(settings, retriever, generator)
    golden = common.load_golden() + common.load_golden(common.CONTOSO_GOLDEN.with_name("unanswerable.dev.jsonl"))
    golden = golden[: args.limit] if args.limit else golden
    head = lookup.head
    decoders = ["plain", "lookup-f32", "lookup"] if head is not None else ["plain", "lookup"]
    results: dict[str, dict] = {}
    # First-call allocations, outside the timings.
    common.timed_stream(generator, GenerationRequest("Question: warm-up?\nAnswer:", 4))
    for label, adapter in models:
        runs: dict[str, list[dict]] = {name: [] for name in decoders}
        passes, tokens = lookup.passes, lookup.tokens
        checked, fallbacks = (head.checked, head.fallbacks) if head else (0, 0)
        for index, row in enumerate(golden):
            request = ChatRequest(row["question"], collections=["contoso"], adapter=adapter)
            prepared = service.prepare(request)
            if prepared.prompt_text is None:  # the retrieval gate answered without the model
                continue
            generation = service.generation_request(request, prepared)
            shift = index % len(decoders)  # each decoder runs first, second, ... in turn: none always runs warm
            for name in decoders[shift:] + decoders[:shift]:
                generator.lookup = None if name == "plain" else lookup
                lookup.head = head if name == "lookup" else None
                runs[name].append(common.timed_stream(generator, generation))
            common.console.print(f"  {label} {index + 1}/{len(golden)}: {runs['plain'][-1]['tokens']} tokens, "
                                 + " -> ".join(f"{runs[n][-1]['decode_s']:.1f} s" for n in decoders), style="dim")
        generator.lookup, lookup.head = lookup, head
        results[label] = {name: summarise(r) for name, r in runs.items()}
        results[label].update(
            identical={n: sum(a["text"] == b["text"] for a, b in zip(runs["plain"], runs[n])) for n in decoders[1:]},
            passes=lookup.passes - passes, tokens_per_pass=(lookup.tokens - tokens) / max(1, lookup.passes - passes),
            shortlist_rows=(head.checked - checked) if head else 0,
            shortlist_fallbacks=(head.fallbacks - fallbacks) if head else 0,
            speedup={n: results[label][n]["decode_tok_s"] / results[label]["plain"]["decode_tok_s"]
                     for n in decoders[1:]})
    rows = []
    for label, r in results.items():
        for name in decoders:
            s = r[name]
            rows.append((label, name, s["answers"], s["tokens"], f"{s['decode_tok_s']:.1f}",
                         "1.00x" if name == "plain" else f"{r['speedup'][name]:.2f}x", f"{s['ttft_p50_s']:.2f}",
                         f"{s['total_s']:.0f}",
                         "-" if name == "plain" else f"{r['identical'][name]} of {s['answers']}"))
    common.console.print(common.table(
        f"Prompt lookup ({args.short} / {args.long} draft tokens) vs one token per pass, Contoso dev, transformers fp32 "
        "(lookup-f32: float32 output layer; lookup: bfloat16 shortlist, as served)",
        ["model", "decoder", "answers", "tokens", "decode tok/s", "vs plain", "TTFT p50 s", "total s",
         "identical to plain"], rows))
    for label, r in results.items():
        common.console.print(f"{label}: {r['tokens_per_pass']:.2f} tokens per lookup pass; shortlist rows "
                             f"{r['shortlist_rows']}, full-product fallbacks {r['shortlist_fallbacks']}")
    path = common.write_json("prompt_lookup", {"args": {k: str(v) for k, v in vars(args).items()}, "results": results,
                                               "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
