"""Base model + RAG answer quality on the Contoso dev golden set: the baseline fine-tuning must beat.

    .venv/bin/python bench/answer_quality.py [--limit 40] [--unanswerable-limit 25] [--adapter NAME@vN|base] [--tag T]
        [--max-new-tokens 96] [--home DIR]

Uses the index that bench/retrieval_quality.py builds (same default home, ingested here if
missing) and ragtune's own ChatService with the configured generator (default: Gemma 3 270M via
transformers). For each answerable question: token F1 (SQuAD) and MiniLM cosine similarity between
the answer and the reference, whether it cited anything, and whether it wrongly refused. For each
unanswerable question: whether it refused (by the retrieval threshold, `chat.min_dense_score`, or
in its own words). Also reports the threshold sweep of that retrieval gate over both sets, so the
default can be re-chosen for another embedder. Writes bench/results/answer_quality.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import _common as common
import retrieval_quality

UNANSWERABLE = common.CONTOSO / "golden" / "unanswerable.dev.jsonl"
THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.55, 0.6)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, help="ragtune home with the Contoso index (default: retrieval_quality's)")
    p.add_argument("--limit", type=int, default=40, help="answerable questions generated for (0 = all 120)")
    p.add_argument("--unanswerable-limit", type=int, default=25, help="unanswerable questions (0 = all)")
    p.add_argument("--adapter", default="base", help="adapter to answer with: NAME, NAME@vN or base (default)")
    p.add_argument("--tag", default="answer_quality", help="name of the result files in bench/results/")
    p.add_argument("--max-new-tokens", type=int, default=96, help="cap per answer, in tokens")
    return p.parse_args(argv)


def first(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    return rows[:limit] if limit else rows


async def answer_all(service, questions: list[str], adapter: str | None, max_new: int) -> list[Any]:
    from assistant.chat_service import ChatRequest

    answers = []
    for number, question in enumerate(questions, start=1):
        answers.append(await service.answer(ChatRequest(question, adapter=adapter, max_new_tokens=max_new)))
        common.console.print(f"  {number}/{len(questions)} {answers[-1].timing_ms['total'] / 1000:.1f} s", style="dim")
    return answers


def _adapter_metadata(settings, adapter: str) -> dict[str, Any] | None:
    """Which registry version answered (its dataset and training summary), for the record."""
    if adapter == "base":
        return None
    from assistant import assembly

    meta = assembly.adapter_registry(settings).get(adapter).metadata
    return {k: meta.get(k) for k in ("name", "version", "dataset", "training", "hyperparameters")}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    common.require_contoso()
    from assistant import assembly
    from assistant.chat_service import ChatService
    from assistant.inference_queue import InferenceQueue
    from eval.text_metrics import token_f1

    rq_args = retrieval_quality.parse_args(["--no-baseline"] + (["--home", str(args.home)] if args.home else []))
    settings = retrieval_quality.build_settings(rq_args)
    # One converted Gemma checkpoint for every bench (the conversion takes a minute or two).
    generator = settings.generator.model_copy(update={"cache_dir": common.CACHE_ROOT / "models"})
    settings = settings.model_copy(update={"generator": generator})
    retrieval_quality.ingest(settings)  # a no-op when the index is current
    answerable = first(common.load_golden(), args.limit)
    unanswerable = first(common.load_golden(UNANSWERABLE), args.unanswerable_limit)

    retriever = assembly.retriever(settings)
    generator = assembly.generator(settings)
    service = ChatService(retriever, generator, InferenceQueue(), settings.chat, settings.generator,
                          assembly.default_adapter(settings, generator))

    # The retrieval gate alone, swept over every question of both sets (no generation needed).
    def best(rows: list[dict[str, Any]]) -> list[float]:
        hits = retriever.search_many([r["question"] for r in rows], settings.chat.k)
        return [max([h.dense_score for h in row if h.dense_score is not None] or [-1.0]) for row in hits]

    best_a, best_u = best(common.load_golden()), best(common.load_golden(UNANSWERABLE))
    sweep = [[t, sum(s >= t for s in best_a) / len(best_a), sum(s < t for s in best_u) / len(best_u)] for t in THRESHOLDS]

    wall = time.perf_counter()
    got_a = asyncio.run(answer_all(service, [r["question"] for r in answerable], args.adapter, args.max_new_tokens))
    got_u = asyncio.run(answer_all(service, [r["question"] for r in unanswerable], args.adapter, args.max_new_tokens))
    generation_s = time.perf_counter() - wall

    embedder = retriever.store.embedder
    pairs = [(a.text, r["reference"]) for a, r in zip(got_a, answerable)]
    vectors = embedder.embed([p for pair in pairs for p in pair])
    similarity = [float(vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(pairs))]
    f1 = [token_f1(a, ref) for a, ref in pairs]
    summary = {
        "model": generator.name,
        "adapter": args.adapter,
        "adapter_metadata": _adapter_metadata(settings, args.adapter),
        "answerable": len(answerable),
        "token_f1": statistics.mean(f1),
        "embedding_similarity": statistics.mean(similarity),
        "cited_rate": sum(bool(a.citations) for a in got_a) / len(got_a),
        "wrong_refusal_rate": sum(a.refused for a in got_a) / len(got_a),
        "unanswerable": len(unanswerable),
        "refusal_rate_unanswerable": sum(a.refused for a in got_u) / len(got_u),
        "refused_by_retrieval_gate": sum(a.finish_reason == "no_context" for a in got_u) / len(got_u),
        "mean_completion_tokens": statistics.mean(a.completion_tokens for a in got_a),
        "seconds_per_answer": generation_s / (len(got_a) + len(got_u)),
        "min_dense_score": settings.chat.min_dense_score,
    }
    common.console.print(common.table(
        f"Answer quality, {summary['model']} {'(base)' if args.adapter == 'base' else '+ ' + args.adapter} + RAG, Contoso dev",
        ["metric", "value"], [[k, common.fmt(v)] for k, v in summary.items()]))
    common.console.print(common.table(
        "Retrieval gate (chat.min_dense_score) over all 120 answerable / 25 unanswerable dev questions",
        ["threshold", "answerable kept", "unanswerable refused"], sweep))
    rows = [{"id": r["id"], "question": r["question"], "answer": a.text, "reference": r.get("reference"),
             "refused": a.refused, "finish_reason": a.finish_reason, "citations": [c.number for c in a.citations]}
            for r, a in zip(answerable + unanswerable, got_a + got_u)]
    common.write_jsonl(f"{args.tag}_answers.jsonl", rows)
    path = common.write_json(args.tag, {"summary": summary, "gate_sweep": sweep,
                                                     "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
