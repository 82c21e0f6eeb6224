"""Synthetic data quality on the Contoso corpus: acceptance per filter and golden-set near-duplicates.

    .venv/bin/python bench/synth_quality.py [--max-chunks 240] [--teacher base] [--home DIR]
    .venv/bin/python bench/synth_quality.py --dataset DIR     # summarise an existing `ragtune synth` output

Generates with ragtune's own SynthJob on the index bench/retrieval_quality.py builds (ingested here
if missing), the golden dev sets excluded: their questions are never given to the teacher, only
compared with what it wrote. Reports how many golden questions have a near-duplicate (MiniLM cosine
>= synth.golden_similarity) among all generated questions and among the kept ones, each filter's
acceptance rate, and generation speed. Writes bench/results/synth_quality.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import _common as common
import retrieval_quality

GOLDEN = [common.CONTOSO_GOLDEN, common.CONTOSO / "golden" / "unanswerable.dev.jsonl"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, help="summarise this synth output instead of generating")
    p.add_argument("--home", type=Path, help="ragtune home with the Contoso index (default: retrieval_quality's)")
    p.add_argument("--max-chunks", type=int, default=240, help="chunks sampled (0 = all)")
    p.add_argument("--teacher", default="base", help="base, fake, a model path or openai:URL")
    args = p.parse_args(argv)
    seconds = None
    if args.dataset is None:
        common.require_contoso()
        from assistant import assembly
        from finetune.synth_job import SynthJob

        settings = retrieval_quality.build_settings(
            retrieval_quality.parse_args(["--no-baseline"] + (["--home", str(args.home)] if args.home else [])))
        settings = settings.model_copy(update={
            "generator": settings.generator.model_copy(update={"cache_dir": common.CACHE_ROOT / "models"}),
            "synth": settings.synth.model_copy(update={"max_chunks": args.max_chunks,
                                                       "exclude_golden": [str(g) for g in GOLDEN]})})
        retrieval_quality.ingest(settings)
        args.dataset = settings.datasets_dir / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
        job = SynthJob(settings, assembly.retriever(settings), assembly.teacher(settings, args.teacher),
                       assembly.pii_redactor(settings))
        started = time.perf_counter()
        job.run("default", args.dataset,
                lambda done, total: done % 25 == 0 and common.console.print(f"  {done}/{total}", style="dim"))
        seconds = time.perf_counter() - started
    card = json.loads((args.dataset / "card.json").read_text())
    common.console.print(common.table(
        f"Synthetic QA filters, teacher {card['teacher']}, {card['chunks_used']} chunks",
        ["filter", "entered", "passed", "acceptance"],
        [[r["filter"], r["entered"], r["passed"], r["acceptance"]] for r in card["filters"]]))
    dupes = card["golden_near_duplicates"]
    summary = {"candidates": card["candidates"], "pairs_kept": card["pairs_kept"],
               "overall_acceptance": card["pairs_kept"] / max(card["candidates"], 1),
               "train_examples": card["examples"]["train"], "val_examples": card["examples"]["val"],
               "refusal_targets": card["examples"]["refusal_targets"],
               "golden_questions": dupes["golden"], "golden_with_near_duplicate_generated": dupes["generated"],
               "golden_with_near_duplicate_kept": dupes["kept"],
               "seconds_per_candidate": seconds / max(card["candidates"], 1) if seconds else None}
    common.console.print(common.table("Summary", ["metric", "value"], summary.items()))
    path = common.write_json("synth_quality", {"dataset": str(args.dataset), "summary": summary,
                                               "filters": card["filters"], "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
