"""A large real-text corpus for the index benches: N chunk texts made from the sample documents, embedded by
ragtune's embedder, with real questions as queries; and BM25 built and searched at that size.

    .venv/bin/python bench/scale_corpus.py --out DIR [--chunks 1000000] [--home HOME] [--embedder openvino]
        [--shard 50000] [--no-bm25]

Corpus: every sentence of the Contoso PDFs (read from HOME's docstore; the PDFs are ingested there first if it
holds nothing) grouped by document; a chunk is two consecutive sentences and a third from the same document, in
reading order, drawn with a fixed seed, so chunks read like the documents and repeat their vocabulary the way a
large company corpus repeats its own (about 64 MiniLM tokens each: short, because 1M passes of 200-token chunks
would take over two hours on 2 cores). Duplicate texts are redrawn. Embedded in shards of --shard texts saved as
they finish (DIR/shard-NNNN.npy), so an interrupted run resumes where it stopped; then DIR/vectors.npy (float32,
L2-normalised), DIR/texts.jsonl and DIR/queries.npy: every Contoso dev and Kestrel golden question, embedded the
same way. Reported: embedding texts/s (what bounds ingest), BM25 (bm25s through ragtune's BM25Index) build
seconds, peak memory and single-query p50/p95 over the questions. `bench/faiss_latency.py --vectors DIR` then
measures the FAISS index types on these vectors. Writes bench/results/scale_corpus.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import sqlite3
import time
from pathlib import Path

import _common as common

SENTENCE = re.compile(r"(?<=[.!?])\s+")
KESTREL_GOLDEN = common.PROJECT / "samples" / "kestrel" / "golden"


def sentences_by_document(docstore: Path) -> list[list[str]]:
    db = sqlite3.connect(f"file:{docstore}?mode=ro", uri=True)
    by_doc: dict[int, list[str]] = {}
    for document, text in db.execute("SELECT document_id, text FROM chunks ORDER BY document_id, ord"):
        for sentence in SENTENCE.split(" ".join(text.split())):
            if 20 <= len(sentence) <= 400:  # drop fragments and table dumps
                by_doc.setdefault(document, []).append(sentence)
    db.close()
    return [s for s in by_doc.values() if len(s) >= 3]


def synthesise(documents: list[list[str]], n: int, seed: int) -> list[str]:
    rng, seen, out = random.Random(seed), set(), []
    weights = [len(d) for d in documents]  # large documents give more chunks, as they would
    while len(out) < n:
        doc = rng.choices(documents, weights)[0]
        i, j = rng.randrange(len(doc) - 1), rng.randrange(len(doc))
        first, second = sorted((i, j))
        text = " ".join([doc[first], doc[first + 1], doc[second]] if first != second else [doc[i], doc[i + 1]])
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def questions() -> list[str]:
    files = [common.CONTOSO_GOLDEN, common.CONTOSO_GOLDEN.with_name("unanswerable.dev.jsonl"),
             KESTREL_GOLDEN / "answerable.jsonl", KESTREL_GOLDEN / "unanswerable.jsonl"]
    return [row["question"] for path in files if path.exists() for row in common.load_golden(path)]


def embed_corpus(embedder, texts: list[str], out: Path, shard: int):
    import numpy as np

    shards, started, done_now = [], time.perf_counter(), 0
    for number, start in enumerate(range(0, len(texts), shard)):
        path = out / f"shard-{number:04d}.npy"
        if path.exists():
            shards.append(np.load(path))
            continue
        vectors = embedder.embed(texts[start:start + shard]).astype(np.float32)
        np.save(path.with_suffix(".tmp.npy"), vectors)
        path.with_suffix(".tmp.npy").replace(path)
        shards.append(vectors)
        done_now += len(vectors)
        rate = done_now / (time.perf_counter() - started)
        common.console.print(f"  embedded {start + len(vectors):,}/{len(texts):,} ({rate:.0f} texts/s)", style="dim")
    seconds = time.perf_counter() - started
    return np.concatenate(shards), {"embedded_now": done_now, "seconds": seconds,
                                    "texts_per_s": done_now / seconds if done_now else None}


def bm25_at_scale(texts: list[str], queries: list[str]) -> dict:
    import numpy as np

    from ingestion.bm25_index import BM25Index

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    index = BM25Index(np.arange(len(texts), dtype=np.int64) * 3 + 7, texts)
    build_s = time.perf_counter() - started
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    for q in queries[:5]:
        index.search(q, 10)
    times = []
    for q in queries:
        t = time.perf_counter()
        index.search(q, 10)
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"build_s": build_s, "peak_rss_growth_mb": peak_mb, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "queries": len(queries)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="corpus directory (shards, vectors.npy, texts.jsonl)")
    p.add_argument("--chunks", type=int, default=1_000_000)
    p.add_argument("--home", type=Path, default=common.CACHE_ROOT / "naive-rag-contoso",
                   help="ragtune home with the Contoso index (ingested if empty)")
    p.add_argument("--embedder", default="openvino", help="embedder.mode (openvino or sentence-transformers)")
    p.add_argument("--models", type=Path, help="embedder.cache_dir (the OpenVINO export)")
    p.add_argument("--shard", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-bm25", action="store_true")
    args = p.parse_args()
    import numpy as np

    from assistant import assembly
    from assistant.settings import load_settings

    common.require_contoso()
    embedder_settings = {"mode": args.embedder, "batch_size": 64,
                         **({"cache_dir": str(args.models)} if args.models else {})}
    home = load_settings(profile="default", overrides={"home": str(args.home)})
    common.contoso_retriever(home)  # setup: the sentence source (the home's own embedder ingests it if empty)
    embedder = assembly.embedder(load_settings(profile="default", overrides={
        "home": str(args.home), "embedder": embedder_settings}))
    args.out.mkdir(parents=True, exist_ok=True)
    documents = sentences_by_document(home.index_dir / "docstore.sqlite")
    texts = synthesise(documents, args.chunks, args.seed)
    common.console.print(f"{sum(map(len, documents)):,} sentences in {len(documents)} documents -> "
                         f"{len(texts):,} chunks, mean {np.mean([len(t) for t in texts[:10000]]):.0f} characters")
    with open(args.out / "texts.jsonl", "w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps(text) + "\n")
    tokens = embedder.count_tokens(texts[:2000]) if hasattr(embedder, "count_tokens") else []
    vectors, embedding = embed_corpus(embedder, texts, args.out, args.shard)  # run
    np.save(args.out / "vectors.npy", vectors)
    asked = questions()
    np.save(args.out / "queries.npy", embedder.embed(asked).astype(np.float32))
    result = {"chunks": len(texts), "documents": len(documents), "embedder": args.embedder,
              "mean_tokens": float(np.mean(tokens)) if tokens else None, "embedding": embedding,
              "queries": len(asked), "bm25": None if args.no_bm25 else bm25_at_scale(texts, asked)}
    path = common.write_json("scale_corpus", {"environment": common.environment(), "result": result})  # save
    rows = [("chunks", f"{len(texts):,}"), ("mean MiniLM tokens", common.fmt(result["mean_tokens"])),
            ("embedding texts/s", common.fmt(embedding["texts_per_s"])), ("questions", len(asked))]
    if result["bm25"]:
        b = result["bm25"]
        rows += [("BM25 build s", common.fmt(b["build_s"])),
                 ("BM25 peak RSS growth MB", common.fmt(b["peak_rss_growth_mb"])),
                 ("BM25 p50 / p95 ms", f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f}")]
    common.console.print(common.table("Real-text corpus at scale", ["measure", "value"], rows))
    common.console.print(f"wrote {path} and {args.out}", style="dim")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
