"""The hybrid's first quality result: base + RAG versus LoRA + RAG on the Contoso dev golden set.

    .venv/bin/python bench/hybrid_quality.py --home HOME --adapter NAME@vN [--limit 40] [--unanswerable-limit 25]

HOME holds the Contoso index and the adapter registry (an adapter trained by `ragtune finetune`
on `ragtune synth` data from the Contoso documents, golden sets excluded). Runs
bench/answer_quality.py twice with the same questions, retrieval and decoding, once with the base
model and once with the adapter, and prints the metrics side by side with the difference. The
per-question answers of both runs are joined in bench/results/hybrid_quality_answers.jsonl.
"""

from __future__ import annotations

import argparse
import json
from typing import Sequence

import _common as common
import answer_quality

METRICS = ["token_f1", "embedding_similarity", "cited_rate", "wrong_refusal_rate", "refusal_rate_unanswerable",
           "refused_by_retrieval_gate", "mean_completion_tokens", "seconds_per_answer"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", required=True, help="ragtune home with the Contoso index and the adapter registry")
    p.add_argument("--adapter", required=True, help="NAME@vN of the adapter to compare with the base model")
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--unanswerable-limit", type=int, default=25)
    p.add_argument("--max-new-tokens", type=int, default=96)
    args = p.parse_args(argv)
    common_args = ["--home", args.home, "--limit", str(args.limit), "--unanswerable-limit",
                   str(args.unanswerable_limit), "--max-new-tokens", str(args.max_new_tokens)]
    for adapter, tag in (("base", "hybrid_base"), (args.adapter, "hybrid_lora")):
        answer_quality.main([*common_args, "--adapter", adapter, "--tag", tag])
    base = json.loads((common.RESULTS_DIR / "hybrid_base.json").read_text())["summary"]
    lora = json.loads((common.RESULTS_DIR / "hybrid_lora.json").read_text())["summary"]
    rows = [[m, base[m], lora[m], lora[m] - base[m]] for m in METRICS]
    common.console.print(common.table(f"Contoso dev: base + RAG vs {args.adapter} + RAG",
                                      ["metric", "base + RAG", "LoRA + RAG", "difference"], rows))
    read = lambda tag: [json.loads(x) for x in (common.RESULTS_DIR / f"{tag}_answers.jsonl").read_text().splitlines()]
    joined = [{"id": b["id"], "question": b["question"], "reference": b["reference"], "base": b["answer"],
               "lora": l["answer"], "base_refused": b["refused"], "lora_refused": l["refused"]}
              for b, l in zip(read("hybrid_base"), read("hybrid_lora"))]
    common.write_jsonl("hybrid_quality_answers.jsonl", joined)
    # The registry keeps evaluation scores with the version they describe.
    from assistant.settings import load_settings
    from finetune.registry import AdapterRegistry

    registry = AdapterRegistry(load_settings(overrides={"home": args.home}).adapters_dir)
    scores = {m: round(lora[m], 4) for m in METRICS[:5]}
    previous = registry.get(args.adapter).metadata.get("eval") or {}
    registry.update_metadata(args.adapter, eval={**previous, "contoso-dev-answer-quality": {
        **scores, "answerable": lora["answerable"], "unanswerable": lora["unanswerable"],
        "base_model_same_run": {m: round(base[m], 4) for m in METRICS[:5]}}})
    path = common.write_json("hybrid_quality", {"adapter": args.adapter, "base": base, "lora": lora,
                                                "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
