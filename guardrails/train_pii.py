"""Train and calibrate the person-name tagger; writes guardrails/pii_names.npz and pii_names.json.

    .venv/bin/python -m guardrails.train_pii [--folds 5] [--c 0.5] [--out guardrails/pii_names.npz]

Data: the training part of ../shared/data/security/pii_synth_v2.dev.json (guardrails/pii_data.split: whole
templates are held out, see there) and gazetteers from installed packages (Faker, the MiniLM vocabulary). The
held-out part is never read here. The threshold is calibrated on out-of-fold scores of grouped k-fold
cross-validation over the training templates (a template's rows share a fold): the threshold with the best
F2 (recall counts four times as much as precision: a missed name leaks, a masked common word only reads oddly)
among those whose span precision is at least `MIN_PRECISION` (lower than the detector's: here every span that hits
no PERSON label counts as false, also the name-derived words of company, street and place names that the whole
detector masks anyway or drops beside a place word). Deterministic: same packages, same artefact.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.pii_crafted import crafted
from guardrails.pii_data import (HELD_OUT_SHARE, gazetteer_hashes, gazetteer_words, labelled_tokens, load_rows,
                                 package_versions, split, template)
from guardrails.pii_names import (DEFAULT_MODEL, FEATURE_VERSION, GAZETTEERS, NameTagger, bucket, features,
                                  name_runs, word_hash)

N_BUCKETS = 2**20
MIN_PRECISION = 0.75
GAZ_DROPOUT = 0.35
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.025), 3)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--c", type=float, default=0.5, help="inverse L2 strength of the logistic regression")
    p.add_argument("--crafted", type=int, default=30, help="crafted sentences per template (0: dev rows only)")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    return p.parse_args(argv)


class _Hiding:
    """A gazetteer that pretends not to know some words (a crafted row's name drawn from Faker's own lists)."""

    def __init__(self, words: frozenset[int], hidden: set[int]) -> None:
        self.words, self.hidden = words, hidden

    def __contains__(self, h: int) -> bool:
        return h not in self.hidden and h in self.words


def design(rows: list[dict], gaz: dict[str, frozenset[int]], seed: int = 0):
    """Sparse feature matrix over the word tokens of all rows, their labels and their row index. Crafted rows
    take their names from Faker, whose lists are the name gazetteers; so that the tagger does not learn that
    every name is listed, each name word of a crafted row is hidden from the gazetteers with probability
    GAZ_DROPOUT (about the share of dev-set name words that Faker's lists lack)."""
    from scipy.sparse import csr_matrix

    rng = np.random.default_rng(seed)
    indptr, indices, labels, owner = [0], [], [], []
    for r, row in enumerate(rows):
        tokens, y = labelled_tokens(row)
        row_gaz = gaz
        if row.get("crafted"):
            hidden = {word_hash(t.text) for t, yi in zip(tokens, y) if yi and rng.random() < GAZ_DROPOUT}
            row_gaz = {g: _Hiding(v, hidden) if g in ("first", "last") else v for g, v in gaz.items()}
        for i, tok in enumerate(tokens):
            if not tok.is_word:
                continue
            indices += [bucket(f, N_BUCKETS) for f in features(row["full_text"], tokens, i, row_gaz)]
            indptr.append(len(indices))
            labels.append(y[i])
            owner.append(r)
    x = csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(labels), N_BUCKETS))
    x.sum_duplicates()
    return x, np.array(labels), np.array(owner)


def fit(x, y, c: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(buckets with a non-zero weight, their weights, intercept)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, solver="liblinear", max_iter=500).fit(x, y)
    coef = model.coef_[0]
    nonzero = np.flatnonzero(np.abs(coef) > 1e-4)
    return nonzero.astype(np.uint32), coef[nonzero].astype(np.float32), float(model.intercept_[0])


def tagger(buckets, weights, intercept: float, gaz, threshold: float = 0.5) -> NameTagger:
    return NameTagger(dict(zip(buckets.tolist(), weights.astype(np.float64).tolist())), intercept, gaz, N_BUCKETS,
                      threshold)


def span_counts(model: NameTagger, rows: list[dict], thresholds) -> np.ndarray:
    """Per threshold: [gold names, gold names overlapped by a predicted span, predicted spans, those overlapping
    a gold name] (the overlap measure of bench/pii_recall.py)."""
    out = np.zeros((len(thresholds), 4))
    for row in rows:
        gold = [(s["start_position"], s["end_position"]) for s in row["spans"] if s["entity_type"] == "PERSON"]
        scored = model.token_scores(row["full_text"])
        for k, t in enumerate(thresholds):
            chosen = list(name_runs(row["full_text"], scored, float(t)))
            out[k, 0] += len(gold)
            out[k, 1] += sum(any(a < e and s < b for a, b, _ in chosen) for s, e in gold)
            out[k, 2] += len(chosen)
            out[k, 3] += sum(any(a < e and s < b for s, e in gold) for a, b, _ in chosen)
    return out


def choose_threshold(counts: np.ndarray) -> tuple[float, dict]:
    recall = counts[:, 1] / np.maximum(counts[:, 0], 1)
    precision = counts[:, 3] / np.maximum(counts[:, 2], 1)
    f2 = 5 * precision * recall / np.maximum(4 * precision + recall, 1e-9)
    f2[precision < MIN_PRECISION] = -1
    k = int(np.argmax(f2))
    curve = {f"{t:.3f}": {"recall": round(float(r), 4), "precision": round(float(p), 4)}
             for t, r, p in zip(THRESHOLDS, recall, precision)}
    return float(THRESHOLDS[k]), curve


def cross_validate(rows: list[dict], extra: list[dict], gaz, folds: int, c: float) -> np.ndarray:
    """Summed span counts over folds; each fold's model never saw the fold's templates."""
    templates = sorted({template(r) for r in rows})
    rng = np.random.default_rng(0)
    fold_of = {t: i % folds for i, t in enumerate(rng.permutation(templates))}
    fold = np.array([fold_of[template(r)] for r in rows])
    total = np.zeros((len(THRESHOLDS), 4))
    for k in range(folds):
        train_rows = [r for r, f in zip(rows, fold) if f != k]
        test_rows = [r for r, f in zip(rows, fold) if f == k]
        x, y, _ = design(train_rows + extra, gaz)
        total += span_counts(tagger(*fit(x, y, c), gaz), test_rows, THRESHOLDS)
    return total


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    train_rows, held_rows = split(load_rows())
    hashes = gazetteer_hashes(gazetteer_words())
    gaz = {g: frozenset(hashes[g]) for g in GAZETTEERS}
    extra = crafted(per_template=args.crafted) if args.crafted else []
    counts = cross_validate(train_rows, extra, gaz, args.folds, args.c)
    threshold, curve = choose_threshold(counts)
    x, y, _ = design(train_rows + extra, gaz)
    buckets, weights, intercept = fit(x, y, args.c)
    cv = curve[f"{threshold:.3f}"]
    meta = {
        "feature_version": FEATURE_VERSION, "n_buckets": N_BUCKETS, "intercept": intercept, "threshold": threshold,
        "c": args.c, "folds": args.folds, "min_precision": MIN_PRECISION, "cv_at_threshold": cv, "cv_curve": curve,
        "training": {"rows": len(train_rows), "templates": len({template(r) for r in train_rows}),
                     "word_tokens": int(len(y)), "name_tokens": int(y.sum()), "held_out_share": HELD_OUT_SHARE,
                     "held_out_rows_not_used": len(held_rows),
                     "crafted_rows": len(extra)},
        "gazetteer_sizes": {g: len(v) for g, v in hashes.items()}, "packages": package_versions(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, buckets=buckets, weights=weights.astype(np.float16),
                        **{f"gaz_{g}": np.array(hashes[g], dtype=np.uint32) for g in GAZETTEERS})
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"cross-validated on {len(train_rows)} training rows: threshold {threshold}, span recall "
          f"{cv['recall']:.3f}, precision {cv['precision']:.3f}; {len(buckets)} weights; wrote {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB) in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
