"""Fine-tune the injection rail's encoder (guardrails/tuned_encoder.py): a LoRA adapter on the project's MiniLM and a
linear head, trained on the same rows as the injection regression (train_injection.prepare), its probability
combined with the heuristics exactly as the detector does (`injection.combine`).

    .venv/bin/python -m guardrails.train_injection_encoder [--folds 3] [--epochs 2] [--out guardrails/injection_encoder]

Recipe: setup (rows, revealed texts, heuristic features, similarity groups, the base model) -> grouped k-fold
cross-validation (a fresh adapter per fold; out-of-fold scores; the regression refitted on the same folds for a
side-by-side) -> per-fold flags at thresholds calibrated on the other folds' out-of-fold scores
(train_injection.calibrate: the regression's budget) -> the shipped adapter on all rows, with thresholds from all
out-of-fold scores -> save adapter, head and report.json (resolved config, rates per kind, seconds).
About 25 minutes on 2 cores with 3 folds and 2 epochs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.injection import DEFAULT_ENCODER_DIR, combine
from guardrails.train_harmful_encoder import arguments, fine_tune, fold_of, ship
from guardrails.train_injection import DOC_KINDS, calibrate, fit_scores, prepare, rates
from guardrails.tuned_encoder import probabilities_of

# Document text, benign and planted: the chunk threshold decides it in service.
DOCUMENT_KINDS = DOC_KINDS + ("crafted-indirect",)


def flags(scores: np.ndarray, kinds: np.ndarray, fold: np.ndarray, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """(flagged as a message, flagged as a chunk sentence) per row, each fold at the thresholds of the others."""
    as_input, as_chunk = np.zeros(len(scores), bool), np.zeros(len(scores), bool)
    for k in range(folds):
        t_in, t_chunk = calibrate(scores[fold != k], kinds[fold != k])
        as_input[fold == k] = scores[fold == k] >= t_in
        as_chunk[fold == k] = scores[fold == k] >= t_chunk
    return as_input, as_chunk


def served(kinds: np.ndarray, as_input: np.ndarray, as_chunk: np.ndarray) -> dict[str, dict]:
    """Rates per kind as served: document text at the chunk threshold, everything else at the input threshold."""
    return rates(kinds, np.where(np.isin(kinds, DOCUMENT_KINDS), as_chunk, as_input))


def train(embedder, out: Path, folds: int = 3, epochs: int = 2, max_tokens: int = 128, seed: int = 0,
          l2: float = 1.0) -> dict:
    started = time.perf_counter()
    rows, vectors, feats, labels, kinds, groups = prepare(embedder, seed)
    texts = [r["revealed"] for r in rows]
    report: dict = {"seed": seed, "folds": folds, "epochs": epochs, "max_tokens": max_tokens,
                    "embedder_id": embedder.id, "rows": {k: int((kinds == k).sum()) for k in sorted(set(kinds))}}
    if folds >= 2:
        fold = fold_of(groups, folds, seed)
        oof, oof_regression = np.zeros(len(rows)), np.zeros(len(rows))
        for k in range(folds):
            test, train_idx = np.nonzero(fold == k)[0], np.nonzero(fold != k)[0]
            model, tok, w, b = fine_tune(embedder.model_dir, [texts[i] for i in train_idx], labels[train_idx],
                                         epochs, max_tokens, seed, progress=f"fold {k + 1}/{folds}")
            probs = probabilities_of(model, tok, [texts[i] for i in test], max_tokens, w, b)
            oof[test] = [combine(float(p), feats[i]) for p, i in zip(probs, test)]
            oof_regression[test] = fit_scores(vectors[train_idx], feats[train_idx], labels[train_idx], vectors[test],
                                              feats[test], l2)
        report["cv_flag_rate"] = served(kinds, *flags(oof, kinds, fold, folds))
        report["regression_cv_flag_rate"] = served(kinds, *flags(oof_regression, kinds, fold, folds))
        t_in, t_chunk = calibrate(oof, kinds)
    else:  # no cross-validation (a smoke run): thresholds at the regression's floor
        t_in, t_chunk = 0.5, 0.5
    report.update(threshold=t_in, chunk_threshold=t_chunk)
    return ship(embedder.model_dir, embedder.id, texts, labels, out, report, (t_in, t_chunk), started)


def main(argv: Sequence[str] | None = None) -> int:
    args = arguments(__doc__, DEFAULT_ENCODER_DIR).parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from ingestion.embedder import build_embedder

    embedder = build_embedder(EmbedderSettings(model=args.embedder_model))
    print("resolved config:", json.dumps({k: str(v) for k, v in vars(args).items()}), flush=True)
    report = train(embedder, args.out, args.folds, args.epochs, args.max_tokens, args.seed)
    if "cv_flag_rate" in report:
        print(f"{'kind':26s} {'regression':>12s} {'encoder':>12s}   (held out, same folds, as served)")
        for kind, v in report["cv_flag_rate"].items():
            r = report["regression_cv_flag_rate"][kind]
            print(f"{kind:26s} {r['flagged']:5d}/{r['n']:<5d} {v['flagged']:6d}/{v['n']:<5d}")
    print(f"thresholds input/chunk {report['threshold']:.3f}/{report['chunk_threshold']:.3f}; wrote {args.out} "
          f"in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
