"""Retrieval quality on the Contoso HR golden set: naive baseline vs ragtune dense / BM25 / hybrid.

    .venv/bin/python bench/retrieval_quality.py [--home DIR] [--k-max 10] [--rrf-k 60]
        [--dense-weight 1.0] [--bm25-weight 1.0] [--candidates 50]
        [--target-tokens 200] [--overlap-tokens 32] [--no-baseline]

Ingests ../shared/data/contoso-hr/docs/*.pdf with the real embedder (default profile; RAGTUNE_EMBEDDER__MODE=openvino
for the OpenVINO engine, which gets its own home) into a
home cached under /tmp/ragtune-bench/ whose name encodes the chunking parameters (so every
chunking setting gets its own index and reruns only re-open it; `--home` picks another), then
scores the 120 answerable questions. A question is a hit at k when any of its top-k chunks
matches any gold source: same document (document level), or same document and 1-based page
(page level). MRR uses the first matching rank within --k-max (0 when none).

The naive baseline is built here, not by ragtune: pypdf page texts cut into non-overlapping
800-character windows, all-MiniLM-L6-v2 via sentence-transformers directly, exact FAISS inner
product on normalised vectors. Its vectors are cached in the home (naive-baseline.npz).

Writes bench/results/retrieval_quality.json and bench/results/retrieval_quality_questions.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import _common as common

HIT_KS = (1, 3, 5, 10)
NAIVE_WINDOW = 800
MODES = ("dense", "bm25", "hybrid")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", type=Path, help="ragtune home to (re)use; default derived from the chunking parameters")
    p.add_argument("--k-max", type=int, default=10, help="results retrieved per question (hit@k for k <= this)")
    p.add_argument("--rrf-k", type=int, help="retrieval.rrf_k override")
    p.add_argument("--dense-weight", type=float, help="retrieval.dense_weight override")
    p.add_argument("--bm25-weight", type=float, help="retrieval.bm25_weight override")
    p.add_argument("--candidates", type=int, help="retrieval.candidates override (per-ranking depth before fusion)")
    p.add_argument("--target-tokens", type=int, help="chunking.target_tokens override (needs its own home)")
    p.add_argument("--overlap-tokens", type=int, help="chunking.overlap_tokens override (needs its own home)")
    p.add_argument("--no-baseline", action="store_true", help="skip the naive 800-character baseline")
    p.add_argument("--fresh", action="store_true", help="delete the home first (a full re-ingest)")
    return p.parse_args(argv)


def build_settings(args: argparse.Namespace):
    from assistant.settings import load_settings

    overrides: dict[str, Any] = {"chunking": {}, "retrieval": {}}
    if args.target_tokens is not None:
        overrides["chunking"]["target_tokens"] = args.target_tokens
    if args.overlap_tokens is not None:
        overrides["chunking"]["overlap_tokens"] = args.overlap_tokens
    for flag, key in (("rrf_k", "rrf_k"), ("dense_weight", "dense_weight"), ("bm25_weight", "bm25_weight"),
                      ("candidates", "candidates")):
        if getattr(args, flag) is not None:
            overrides["retrieval"][key] = getattr(args, flag)
    settings = load_settings(profile="default", overrides=overrides)
    if settings.embedder.mode == "fake":
        sys.exit("error: this benchmark needs the real embedder (embedder.mode is 'fake'; unset RAGTUNE_EMBEDDER__MODE)")
    if args.home is None:
        c = settings.chunking
        model = Path(settings.embedder.model).name.replace("_", "-")
        engine = "" if settings.embedder.mode == "sentence-transformers" else f"-{settings.embedder.mode}"
        name = f"quality-{model}{engine}-t{c.target_tokens}-o{c.overlap_tokens}-m{c.max_tokens}-h{int(c.heading_context)}"
        home = common.CACHE_ROOT / name
    else:
        home = args.home
    overrides["home"] = str(home)
    return load_settings(profile="default", overrides=overrides)


# --- metrics ---------------------------------------------------------------------------------
def first_rank(retrieved: Sequence[tuple[str, int | None, int | None]], gold: Sequence[dict], level: str) -> int | None:
    """1-based rank of the first retrieved (document, page, page_end) matching any gold source, else None.

    doc: same document; page: same document and cited (start) page; span: same document and the
    gold page within the chunk's [page, page_end] (chunks may run across a page break).
    """
    gold_docs = {g["document"] for g in gold}
    gold_pages = {(g["document"], int(g["page"])) for g in gold}
    for rank, (document, page, page_end) in enumerate(retrieved, start=1):
        if level == "doc" and document in gold_docs:
            return rank
        if page is None:
            continue
        if level == "page" and (document, int(page)) in gold_pages:
            return rank
        if level == "span":
            last = int(page_end) if page_end is not None else int(page)
            if any((document, p) in gold_pages for p in range(int(page), last + 1)):
                return rank
    return None


def score(ranks: list[int | None], k_max: int) -> dict[str, float]:
    n = len(ranks)
    out = {f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in HIT_KS if k <= k_max}
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None) / n
    return out


def evaluate(results: list[list[tuple[str, int | None]]], golden: list[dict], k_max: int) -> dict[str, Any]:
    doc_ranks = [first_rank(r, g["sources"], "doc") for r, g in zip(results, golden)]
    page_ranks = [first_rank(r, g["sources"], "page") for r, g in zip(results, golden)]
    span_ranks = [first_rank(r, g["sources"], "span") for r, g in zip(results, golden)]
    return {"doc": score(doc_ranks, k_max), "page": score(page_ranks, k_max), "span": score(span_ranks, k_max),
            "doc_ranks": doc_ranks, "page_ranks": page_ranks, "span_ranks": span_ranks}


# --- naive baseline --------------------------------------------------------------------------
def naive_chunks(pdfs: list[Path]) -> list[tuple[str, int, str]]:
    """(document, 1-based page, text) windows of 800 characters, non-overlapping within each page."""
    from pypdf import PdfReader

    out = []
    for pdf in pdfs:
        reader = PdfReader(str(pdf))
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            for start in range(0, len(text), NAIVE_WINDOW):
                window = text[start : start + NAIVE_WINDOW]
                if window.strip():
                    out.append((pdf.name, number, window))
    return out


def naive_baseline(home: Path, golden: list[dict], k_max: int) -> tuple[list[list[tuple[str, int]]], dict[str, Any]]:
    import faiss
    import numpy as np
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    chunks = naive_chunks(common.contoso_pdfs())
    parse_s = time.perf_counter() - started
    model_path = common.model_dir()
    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
    texts = [c[2] for c in chunks]
    digest = hashlib.sha256("\x00".join(texts).encode() + (model_path / "config.json").read_bytes()).hexdigest()
    cache = home / "naive-baseline.npz"
    vectors = None
    if cache.exists():
        data = np.load(cache)
        if str(data["digest"]) == digest:
            vectors = data["vectors"]
    embed_s = 0.0
    if vectors is None:
        t = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False).astype(np.float32)
        embed_s = time.perf_counter() - t
        home.mkdir(parents=True, exist_ok=True)
        np.savez(cache, vectors=vectors, digest=np.array(digest))
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors))
    t = time.perf_counter()
    queries = model.encode([g["question"] for g in golden], batch_size=32, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
    _, ids = index.search(queries, k_max)
    search_s = time.perf_counter() - t
    results = [[(chunks[i][0], chunks[i][1], chunks[i][1]) for i in row if i >= 0] for row in ids]
    info = {"chunks": len(chunks), "parse_s": round(parse_s, 3), "embed_s": round(embed_s, 3),
            "embed_cached": embed_s == 0.0, "search_ms_per_query": 1000 * search_s / len(golden)}
    return results, info


# --- ragtune ---------------------------------------------------------------------------------
def ingest(settings) -> dict[str, Any]:
    from assistant import assembly

    job = assembly.ingest_job(settings)
    report = job.run([common.CONTOSO_DOCS])
    job.store.close()
    summary = {"counts": report.counts(), "chunks_written": report.chunks, "pages_written": report.pages,
               "seconds": round(report.seconds, 2), "exit_code": report.exit_code()}
    failed = [f for f in report.files if f.status == "failed"]
    for f in failed:
        common.console.print(f"[red]ingest failed[/red] {f.path}: {f.reason}")
    if report.exit_code() != 0:
        sys.exit(f"error: ingest did not complete (exit code {report.exit_code()})")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    common.require_contoso()
    if not 1 <= args.k_max <= 200:
        sys.exit("error: --k-max must be between 1 and 200")
    settings = build_settings(args)
    golden = common.load_golden()
    wall = time.perf_counter()
    common.console.print(f"home: {settings.home}  (chunking: target {settings.chunking.target_tokens}, "
                         f"overlap {settings.chunking.overlap_tokens}; fusion: rrf_k {settings.retrieval.rrf_k}, "
                         f"dense {settings.retrieval.dense_weight}, bm25 {settings.retrieval.bm25_weight}, "
                         f"candidates {settings.retrieval.candidates})", style="dim")

    if args.fresh and Path(settings.home).exists():
        shutil.rmtree(settings.home)
    try:
        ingest_summary = ingest(settings)
    except sqlite3.OperationalError as exc:
        sys.exit(f"error: the index at {settings.home} does not fit the current ragtune code ({exc}); "
                 "rerun with --fresh (or delete that directory)")
    common.console.print(f"ingest: {ingest_summary['counts']} in {ingest_summary['seconds']} s", style="dim")

    from assistant import assembly

    retriever = assembly.retriever(settings)
    docstore = retriever.store.docstore
    index_chunks = sum(d.chunk_count for d in docstore.list_documents(settings.default_collection))
    questions = [g["question"] for g in golden]
    runs: dict[str, dict[str, Any]] = {}
    retrieved: dict[str, list[list[tuple[str, int | None]]]] = {}

    if not args.no_baseline:
        results, info = naive_baseline(Path(settings.home), golden, args.k_max)
        retrieved["naive baseline"] = results
        runs["naive baseline"] = {**evaluate(results, golden, args.k_max), "info": info}

    retriever.search_many(questions[:2], args.k_max, mode="hybrid")  # warm: model load, BM25 build, FAISS load
    for mode in MODES:
        t = time.perf_counter()
        hits = retriever.search_many(questions, args.k_max, mode=mode)
        seconds = time.perf_counter() - t
        results = [[(h.document, h.page, getattr(h, "page_end", None)) for h in row] for row in hits]
        retrieved[mode] = results
        runs[mode] = {**evaluate(results, golden, args.k_max),
                      "info": {"chunks": index_chunks, "search_ms_per_query": 1000 * seconds / len(questions)}}

    ks = [k for k in HIT_KS if k <= args.k_max]
    columns = (["system"] + [f"doc@{k}" for k in ks] + ["doc MRR"] + [f"page@{k}" for k in ks] + ["page MRR"]
               + [f"span@{min(5, args.k_max)}", "chunks", "ms/q"])
    rows = []
    for name, run in runs.items():
        rows.append([name] + [run["doc"][f"hit@{k}"] for k in ks] + [run["doc"]["mrr"]]
                    + [run["page"][f"hit@{k}"] for k in ks] + [run["page"]["mrr"]]
                    + [run["span"][f"hit@{min(5, args.k_max)}"], run["info"]["chunks"], f"{run['info']['search_ms_per_query']:.1f}"])
    common.console.print(common.table(
        f"Retrieval quality, Contoso HR answerable.dev ({len(golden)} questions, top-{args.k_max}; "
        "doc = right document, page = right document and cited page, span = gold page inside the chunk's page range)",
        columns, rows))

    # per gold document: page hit@5 (and doc hit@5 for hybrid)
    by_doc: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(golden):
        by_doc[g["sources"][0]["document"]].append(i)
    k5 = min(5, args.k_max)
    per_doc_rows, per_doc = [], {}
    for document, idx in sorted(by_doc.items(), key=lambda kv: -len(kv[1])):
        entry = {"questions": len(idx)}
        for name, run in runs.items():
            entry[f"{name} page@{k5}"] = sum(1 for i in idx if run["page_ranks"][i] is not None and run["page_ranks"][i] <= k5) / len(idx)
        entry[f"hybrid doc@{k5}"] = sum(1 for i in idx if runs["hybrid"]["doc_ranks"][i] is not None and runs["hybrid"]["doc_ranks"][i] <= k5) / len(idx)
        per_doc[document] = entry
        per_doc_rows.append([document, len(idx)] + [entry[f"{n} page@{k5}"] for n in runs] + [entry[f"hybrid doc@{k5}"]])
    common.console.print(common.table(
        f"Page hit@{k5} per gold document", ["document", "n"] + [f"{n} page@{k5}" for n in runs] + [f"hybrid doc@{k5}"],
        per_doc_rows))

    question_rows = []
    for i, g in enumerate(golden):
        question_rows.append({
            "id": g.get("id", i), "question": g["question"], "gold": g["sources"],
            "hybrid_top": [{"document": d, "page": p, "page_end": e} for d, p, e in retrieved["hybrid"][i]],
            "page_rank": {name: run["page_ranks"][i] for name, run in runs.items()},
            "doc_rank": {name: run["doc_ranks"][i] for name, run in runs.items()},
        })
    qpath = common.write_jsonl("retrieval_quality_questions.jsonl", question_rows)
    payload = {
        "benchmark": "retrieval_quality",
        "questions": len(golden),
        "k_max": args.k_max,
        "home": str(settings.home),
        "settings": {"chunking": settings.chunking.model_dump(), "retrieval": settings.retrieval.model_dump(),
                     "embedder": settings.embedder.model_dump()},
        "ingest": ingest_summary,
        "systems": {name: {"doc": run["doc"], "page": run["page"], "span": run["span"], **run["info"]}
                    for name, run in runs.items()},
        "per_document": per_doc,
        "wall_s": round(time.perf_counter() - wall, 2),
        "environment": common.environment(),
    }
    path = common.write_json("retrieval_quality", payload)
    retriever.store.close()
    common.console.print(f"wrote {path} and {qpath} ({payload['wall_s']} s)", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
