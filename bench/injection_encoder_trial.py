"""Trial for the injection rail: the shipped kind of model (logistic regression over [MiniLM vector ‖ heuristic
features]) vs the MiniLM itself tuned with LoRA (the harmful rail's recipe, guardrails/train_harmful_encoder.py), each
combined with the heuristics as the detector does (`injection.combine`), on one grouped split of the rail's rows.

    .venv/bin/python bench/injection_encoder_trial.py [--epochs 2] [--seed 1]

One split (a quarter of the similarity groups held out), thresholds calibrated on the held-out benign rows by
train_injection.calibrate for both models alike (optimistic for both, fair between them). About 6 minutes on 2 cores.
Not a shipped model: it tells whether building an injection encoder is worth its training run.
Writes bench/results/injection_encoder_trial.json.
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

import _common as common
import numpy as np

def flagged(scores: np.ndarray, kinds: np.ndarray) -> tuple[dict[str, str], tuple[float, float]]:
    from guardrails.train_injection import calibrate
    from guardrails.train_injection_encoder import DOCUMENT_KINDS

    t_input, t_chunk = calibrate(scores, kinds)
    out = {}
    for kind in sorted(set(kinds)):
        mask = kinds == kind
        threshold = t_chunk if kind in DOCUMENT_KINDS else t_input
        out[kind] = f"{int((scores[mask] >= threshold).sum())}/{int(mask.sum())}"
    return out, (t_input, t_chunk)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from guardrails.injection import combine
    from guardrails.harmful_encoder import probabilities_of
    from guardrails.train_harmful_encoder import fine_tune
    from guardrails.train_injection import fit_scores, prepare
    from ingestion.embedder import build_embedder

    embedder = build_embedder(EmbedderSettings())
    rows, vectors, feats, labels, kinds, groups = prepare(embedder, 0)
    revealed = [r["revealed"] for r in rows]
    unique = np.random.default_rng(args.seed).permutation(np.unique(groups))
    held = set(unique[: len(unique) // 4].tolist())
    test = np.array([g in held for g in groups])
    train = ~test
    linear = fit_scores(vectors[train], feats[train], labels[train], vectors[test], feats[test], 1.0)
    tr, te = np.nonzero(train)[0], np.nonzero(test)[0]
    model, tokenizer, weight, bias = fine_tune(embedder.model_dir, [revealed[i] for i in tr], labels[tr], args.epochs,
                                               128, 0, progress="encoder")
    probs = probabilities_of(model, tokenizer, [revealed[i] for i in te], 128, weight, bias)
    tuned = np.array([combine(float(x), f) for x, f in zip(probs, feats[test])])
    results = {name: flagged(scores, kinds[test]) for name, scores in (("regression", linear), ("encoder", tuned))}
    table = [[kind, results["regression"][0][kind], results["encoder"][0][kind]] for kind in sorted(set(kinds[test]))]
    table.append(["thresholds (input / chunk)", *(f"{a:.3f} / {b:.3f}" for a, b in (r[1] for r in results.values()))])
    common.console.print(common.table(f"Injection rail, one grouped split ({len(tr)} train / {len(te)} held out): "
                                      "flagged / n", ["kind", "regression", "LoRA-tuned MiniLM"], table))
    path = common.write_json("injection_encoder_trial", {"environment": common.environment(), "args": vars(args),
                                                         "results": results})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
