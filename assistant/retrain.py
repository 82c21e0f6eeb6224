"""`ragtune retrain`: the next adapter version from the synthetic data plus what reviewers accepted, gated.

1. Dataset: the newest synthetic dataset (or the one given) plus one RAFT example per accepted review marked
   for training, repeated `loop.review_training_weight` times (reviewed rows weighted up). A review row's
   prompt is built like chat's: the question, the chunks (or pages) retrieval finds for it now; its target is the
   reviewer's reference citing the retrieved chunk on a reference page (or the refusal, for "unanswerable").
2. No leakage: reviewed rows are either training rows or golden rows, never both (the reviewer's choice), and a
   training row whose question matches any golden question (pipeline.golden or the reviewed set) is dropped.
3. Train the next version of the adapter; score it against the promoted one on pipeline.golden plus the reviewed
   golden rows (the non-training ones); apply the promotion gate (assistant/promotion.py).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from assistant import assembly, prompt
from assistant.settings import Settings


class RetrainError(ValueError):
    """Retraining cannot start; the message says what is missing."""


@dataclass
class RetrainResult:
    dataset: Path
    synthetic_examples: int
    reviewed_examples: int  # after weighting
    dropped_as_golden: int
    ref: str
    decision: Any  # eval.promotion_gate.GateDecision
    run_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": str(self.dataset), "synthetic_examples": self.synthetic_examples,
                "reviewed_examples": self.reviewed_examples, "dropped_as_golden": self.dropped_as_golden,
                "ref": self.ref, "gate": self.decision.to_dict(), "run_dir": str(self.run_dir)}


def _norm(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def newest_dataset(settings: Settings) -> Path:
    found = sorted((p.parent for p in settings.datasets_dir.glob("*/train.jsonl") if ".retrain-" not in p.parent.name
                    and "-retrain-" not in p.parent.name), key=lambda p: p.stat().st_mtime)
    if not found:
        raise RetrainError(f"no synthetic dataset under {settings.datasets_dir}: run `ragtune up` or `ragtune synth` first")
    return found[-1]


def reviewed_example(row: Any, retriever: Any, k: int, redact: Callable[[str], str], pages: int = 0,
                     page_max_chars: int = 4000, window_chars: int | None = None,
                     room_chars: int | None = None) -> dict[str, Any]:
    """A RAFT example from an accepted review (eval GoldenRecord): retrieved context as chat serves it (the best
    `pages` whole pages when page expansion is on, within `room_chars`), reviewer's target."""
    hits = retriever.search(row.question, k=k, collections=[row.collection] if row.collection else None)
    if pages:
        hits = [dataclasses.replace(u.hit, heading=u.heading, text=u.text)
                for u in retriever.expand(hits, pages, page_max_chars, window_chars, room_chars)]
    docs = [prompt.PromptDoc.of(h, redact) for h in hits]
    wanted = [(s.get("document"), s.get("page")) for s in row.sources]
    position = next((n for n, h in enumerate(hits, start=1) for d, p in wanted
                     if h.document == d and (p is None or (h.page or 0) <= p <= (h.page_end or h.page or 0))), None)
    if not row.answerable:
        target = prompt.REFUSAL
    else:
        target = row.reference.strip() + (f" [{position}]" if position else "")
    return {"id": f"review-{row.review_id}", "split": "train", "format_version": prompt.FORMAT_VERSION,
            "prompt": prompt.render(docs, row.question), "completion": prompt.completion(target),
            "question": row.question, "answer": target, "source": "review", "review_id": row.review_id,
            "collection": row.collection}


def build_dataset(settings: Settings, base: Path, out: Path, retriever: Any) -> tuple[int, int, int, list[dict]]:
    """(synthetic, reviewed after weighting, dropped as golden, reviewed golden rows for scoring)."""
    from eval import golden as golden_sets
    from finetune.raft import served_room_chars

    db = assembly.database(settings)
    rows = db.reviews.golden()
    scoring = [r for r in rows if not r.training]
    golden_questions = {_norm(q.question) for path in settings.pipeline.golden for q in golden_sets.load(path)}
    golden_questions |= {_norm(r.question) for r in scoring}
    redact = assembly.pii_redactor(settings, getattr(retriever, "store", None))
    training, dropped = [], 0
    for row in (r for r in rows if r.training):
        if _norm(row.question) in golden_questions:
            dropped += 1
            continue
        room = served_room_chars(settings.generator.context_window_tokens, settings.generator.max_new_tokens,
                                 redact(row.question))
        training.append(reviewed_example(row, retriever, settings.chat.k, redact, settings.chat.expand_pages,
                                         settings.chat.page_max_chars, settings.chat.window_chars_without_pages, room))
    synthetic = [line for line in (base / "train.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    weighted = [json.dumps(e, ensure_ascii=False) for e in training for _ in range(settings.loop.review_training_weight)]
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "train.jsonl").write_text("\n".join(synthetic + weighted) + "\n", encoding="utf-8")
    if (base / "val.jsonl").is_file():
        shutil.copy(base / "val.jsonl", staging / "val.jsonl")
    card = {"base_dataset": str(base), "synthetic_examples": len(synthetic), "reviewed_rows": len(training),
            "review_weight": settings.loop.review_training_weight, "dropped_as_golden": dropped,
            "golden_version": db.reviews.golden_version()}
    (staging / "retrain.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    staging.rename(out)  # complete or absent: a crash never leaves a half dataset that looks real
    return len(synthetic), len(weighted), dropped, [r.golden_row() for r in scoring]


def retrain(settings: Settings, data: Path | None = None, eval_limit: int | None = None, promote: bool = False,
            progress: Callable[[str], None] = lambda line: None) -> RetrainResult:
    """Build, train, score, gate. The gate's decision is recorded either way; the version is promoted only with
    `promote` and a passing gate (otherwise a passing version waits for a staged rollout or a promotion)."""
    from assistant.promotion import evaluate_and_gate
    from finetune.finetune_job import run_finetune
    from finetune.recipe import load_recipe

    base = data or newest_dataset(settings)
    out = settings.datasets_dir / f"{base.name}-retrain-{time.strftime('%Y%m%d-%H%M%S')}"
    synthetic, reviewed, dropped, scoring = build_dataset(settings, base, out, assembly.retriever(settings))
    progress(f"dataset {out}: {synthetic} synthetic + {reviewed} reviewed examples ({dropped} dropped as golden)")
    name = settings.pipeline.adapter_name
    version, result, _ = run_finetune(settings, out, load_recipe(settings.pipeline.recipe), name)
    progress(f"trained {version.ref}: {result.steps} steps")
    golden = list(settings.pipeline.golden)
    if scoring:
        reviewed_golden = out / "reviewed_golden.jsonl"
        reviewed_golden.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in scoring), encoding="utf-8")
        golden.append(reviewed_golden)
    decision, run_dir = evaluate_and_gate(settings, version.ref, golden, eval_limit, promote=promote)
    return RetrainResult(out, synthetic, reviewed, dropped, version.ref, decision, run_dir)
