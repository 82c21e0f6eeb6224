"""FAISS single-query latency, build time and recall of ragtune's VectorIndex (flat / HNSW / IVF).

    .venv/bin/python bench/faiss_latency.py [--sizes 10000,100000,1000000] [--types flat,hnsw,ivf]
        [--queries 200] [--k 10] [--noise 0.5] [--seed 0] [--skip ivf@1000000] [--home DIR]
        [--vectors CORPUS_DIR] [--sweep] [--set hnsw_ef_construction=200]

For each size: synthetic L2-normalised random vectors (dim 384, fixed seed), built through
`ingestion.vector_index.VectorIndex.build` with `IndexSettings(type=...)` (other index settings at
their defaults: HNSW M 32 / efConstruction 80 / efSearch 128, IVF nlist = min(4*sqrt(n), n/39) /
nprobe 64). Queries are noisy copies of stored vectors (noise of norm --noise, then normalised),
so each query has a true nearest neighbour. Reported per index: build seconds, p50/p95 latency of
single-query `VectorIndex.search` (ours) and of raw `index.search` on the same FAISS object, their
p50 ratio, batch throughput (all queries in one call), recall@k against the flat index, and how
often the source vector comes back first. Also which type `choose_type` picks by default.

`--vectors DIR` replaces the random vectors by a real-text corpus from bench/scale_corpus.py (DIR/vectors.npy,
the first n of them per size; default size: all) and the noisy copies by its real questions (DIR/queries.npy);
recall@k is then against exact search over the same vectors, and src@1 is not defined. "with ties" counts a
result as found when it scores at least the exact k-th result (a corpus with near-duplicate chunks has many).
`--sweep` also times the query-time knobs of each approximate index without rebuilding it (IVF nprobe 16-128, HNSW efSearch 64-512).
Memory: the process's resident-set growth while the index is built and held (`rss_mb`).

A 1M HNSW build takes minutes on 2 cores and IVF trains k-means on every vector (nlist 4000 at
1M); use `--sizes 10000,100000` for a quick run or `--skip ivf@1000000` to leave one out.
`--home DIR` additionally saves each built index there and reports its file size and load time.

Writes bench/results/faiss_latency.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import _common as common

DIM = 384


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated vector counts")
    p.add_argument("--types", default="flat,hnsw,ivf", help="comma-separated index types (flat is always built)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--noise", type=float, default=0.5, help="norm of the noise added to a stored vector per query")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip", default="", help="comma-separated kind@size pairs to leave out, e.g. ivf@1000000")
    p.add_argument("--home", type=Path, help="save built indexes under DIR/faiss-bench and time loading them")
    p.add_argument("--vectors", type=Path, help="a bench/scale_corpus.py directory: real-text vectors and questions")
    p.add_argument("--sweep", action="store_true", help="also time IVF nprobe / HNSW efSearch settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an index setting for every build, e.g. hnsw_ef_construction=200 (repeatable)")
    return p.parse_args(argv)


def make_data(n: int, queries: int, noise: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        block = rng.standard_normal((min(step, n - start), DIM), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        vectors[start : start + len(block)] = block
    source = rng.choice(n, size=queries, replace=False)
    q = vectors[source] + rng.standard_normal((queries, DIM), dtype=np.float32) * (noise / np.sqrt(DIM))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = np.arange(n, dtype=np.int64) * 3 + 7  # non-contiguous ids, as docstore chunk ids can be
    return ids, vectors, np.ascontiguousarray(q, dtype=np.float32), ids[source]


def corpus_data(directory: Path, n: int):
    """The first n vectors of a scale_corpus directory (ids spaced as docstore ids can be) and its questions."""
    import numpy as np

    vectors = np.load(directory / "vectors.npy", mmap_mode="r")
    if n > len(vectors):
        sys.exit(f"error: {directory} holds {len(vectors):,} vectors, fewer than {n:,}")
    ids = np.arange(n, dtype=np.int64) * 3 + 7
    return ids, np.ascontiguousarray(vectors[:n], dtype=np.float32), np.load(directory / "queries.npy"), None


def rss_mb() -> float:
    """Resident set size now (MiB), from /proc (ru_maxrss only gives the peak)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


SWEEP = {"ivf": ("ivf_nprobe", (16, 32, 64, 128)), "hnsw": ("hnsw_ef_search", (64, 128, 256, 512))}


def percentile_ms(samples: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.array(samples) * 1000.0, q))


def measure(index, queries, k: int) -> dict[str, Any]:
    """Single-query latency of VectorIndex.search (ours) and of the raw FAISS object, interleaved."""
    raw = index.index
    for i in range(min(10, len(queries))):  # warm caches and OpenMP threads
        index.search(queries[i], k)
        raw.search(queries[i : i + 1], k)
    ours_t, raw_t, found, scored = [], [], [], []
    for i in range(len(queries)):
        q1 = queries[i : i + 1]
        pair = ((True, lambda: index.search(queries[i], k)), (False, lambda: raw.search(q1, k)))
        for is_ours, fn in pair if i % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
            if is_ours:
                ours_t.append(elapsed)
                found.append(result[1][0])
                scored.append(result[0][0])
            else:
                raw_t.append(elapsed)
    started = time.perf_counter()
    index.search(queries, k)
    batch_s = time.perf_counter() - started
    import numpy as np

    return {
        "ours_p50_ms": percentile_ms(ours_t, 50), "ours_p95_ms": percentile_ms(ours_t, 95),
        "raw_p50_ms": percentile_ms(raw_t, 50), "raw_p95_ms": percentile_ms(raw_t, 95),
        "batch_qps": len(queries) / batch_s, "ids": np.stack(found), "scores": np.stack(scored),
    }


def recall_at(found, truth, k: int) -> float:
    import numpy as np

    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth)]))


def tie_recall(scores, truth_scores, k: int) -> float:
    """Share of the k results scoring at least the exact k-th score (less 1e-5): a result tied with the k-th is
    as near as the one exact search happened to list (every index here stores full vectors, so scores are exact)."""
    import numpy as np

    return float(np.mean((scores >= truth_scores[:, k - 1:k] - 1e-5).sum(axis=1) / k))


def effective_params(index) -> dict[str, Any]:
    import faiss

    inner = faiss.downcast_index(index.index.index)
    if isinstance(inner, faiss.IndexHNSW):
        return {"efSearch": int(inner.hnsw.efSearch), "efConstruction": int(inner.hnsw.efConstruction),
                "M": int(inner.hnsw.nb_neighbors(1))}
    if isinstance(inner, faiss.IndexIVF):
        return {"nlist": int(inner.nlist), "nprobe": int(inner.nprobe)}
    return {}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import faiss
    import numpy as np

    from assistant.settings import IndexSettings
    from ingestion.vector_index import VectorIndex, choose_type

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.vectors and "--sizes" not in " ".join(sys.argv if argv is None else argv):
        sizes = [len(np.load(args.vectors / "vectors.npy", mmap_mode="r"))]
    kinds = ["flat"] + [t for t in (s.strip() for s in args.types.split(",")) if t and t != "flat"]
    for kind in kinds:
        if kind not in ("flat", "hnsw", "ivf"):
            sys.exit(f"error: unknown index type {kind!r}")
    overrides = dict(item.split("=", 1) for item in args.set)
    skip = {s.strip().replace("_", "") for s in args.skip.split(",") if s.strip()}
    wall = time.perf_counter()
    default = IndexSettings()
    common.console.print(
        f"dim {DIM}, " + (f"real questions of {args.vectors}" if args.vectors else
                            f"{args.queries} queries (noise {args.noise})") + f", k {args.k}, seed {args.seed}; "
        f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads", style="dim")

    results: list[dict[str, Any]] = []
    rows = []
    for n in sizes:
        t = time.perf_counter()
        ids, vectors, queries, source_ids = (corpus_data(args.vectors, n) if args.vectors
                                             else make_data(n, args.queries, args.noise, args.seed))
        common.console.print(f"n={n:,}: data generated in {time.perf_counter() - t:.1f} s", style="dim")
        auto = choose_type(default, n)
        truth = None
        for kind in kinds:
            if f"{kind}@{n}" in skip:
                common.console.print(f"n={n:,} {kind}: skipped (--skip)", style="dim")
                continue
            settings = IndexSettings(type=kind, **overrides)
            rss_before = rss_mb()
            started = time.perf_counter()
            index = VectorIndex.build(ids, vectors, DIM, settings)
            build_s = time.perf_counter() - started
            held_mb = rss_mb() - rss_before
            m = measure(index, queries, args.k)
            found, scores = m.pop("ids"), m.pop("scores")
            if kind == "flat":
                truth, truth_scores = found, scores
            recall = None if truth is None else recall_at(found, truth, args.k)
            tied = None if truth is None else tie_recall(scores, truth_scores, args.k)
            top1 = None if source_ids is None else float(np.mean(found[:, 0] == source_ids))
            entry = {"size": n, "kind": index.kind, "requested": kind, "auto_default": auto, "build_s": build_s,
                     **m, "p50_ratio": m["ours_p50_ms"] / m["raw_p50_ms"], f"recall@{args.k}": recall,
                     "source_at_1": top1, "params": effective_params(index), "rss_mb": held_mb,
                     f"tie_recall@{args.k}": tied}
            if args.sweep and index.kind in SWEEP:
                field, values = SWEEP[index.kind]
                entry["sweep"] = []
                for value in values:
                    index.settings = settings.model_copy(update={field: value})
                    index._tune()
                    swept = measure(index, queries, args.k)
                    point = {field: value, "ours_p50_ms": swept["ours_p50_ms"], "ours_p95_ms": swept["ours_p95_ms"],
                             f"recall@{args.k}": None if truth is None else recall_at(swept["ids"], truth, args.k),
                             f"tie_recall@{args.k}": None if truth is None
                             else tie_recall(swept["scores"], truth_scores, args.k)}
                    entry["sweep"].append(point)
                    common.console.print(f"  {field} {value}: p50 / p95 {point['ours_p50_ms']:.2f} / "
                                         f"{point['ours_p95_ms']:.2f} ms, recall {point[f'recall@{args.k}']}, "
                                         f"with ties {point[f'tie_recall@{args.k}']}", style="dim")
                index.settings = settings
                index._tune()
            if args.home is not None:
                path = args.home / "faiss-bench" / f"{n}-{kind}.faiss"
                t = time.perf_counter()
                index.save(path)
                entry["save_s"] = time.perf_counter() - t
                t = time.perf_counter()
                VectorIndex.load(path, settings)
                entry["load_s"] = time.perf_counter() - t
                entry["file_mb"] = path.stat().st_size / 2**20
            results.append(entry)
            rows.append([f"{n:,}", index.kind + (" *" if index.kind == auto else ""), f"{build_s:.2f}",
                         f"{m['ours_p50_ms']:.3f}", f"{m['ours_p95_ms']:.3f}", f"{m['raw_p50_ms']:.3f}",
                         f"{m['raw_p95_ms']:.3f}", f"{entry['p50_ratio']:.2f}", f"{m['batch_qps']:.0f}",
                         "-" if recall is None else f"{recall:.3f}", "-" if tied is None else f"{tied:.3f}",
                         "-" if top1 is None else f"{top1:.3f}",
                         f"{held_mb:.0f}"])
            common.console.print(f"n={n:,} {index.kind}: built in {build_s:.1f} s, p50 {m['ours_p50_ms']:.3f} ms, "
                                 f"recall {recall if recall is None else round(recall, 3)}", style="dim")
            del index
            gc.collect()
        del vectors, ids
        gc.collect()

    common.console.print(common.table(
        f"FAISS latency via ingestion.vector_index.VectorIndex (dim {DIM}, {len(queries)} single queries, k={args.k}; "
        "* = what choose_type picks by default at that size; ratio = ours p50 / raw p50; recall vs flat)",
        ["n", "type", "build s", "ours p50 ms", "ours p95 ms", "raw p50 ms", "raw p95 ms", "ratio",
         "batch q/s", f"recall@{args.k}", "with ties", "src@1", "RSS MB"], rows, left=2))
    picks = ", ".join(f"{n:,} → {choose_type(default, n)}" for n in sizes)
    common.console.print(f"choose_type default (type auto, switch at {default.auto_approximate_min_vectors:,}): {picks}")

    payload = {
        "benchmark": "faiss_latency", "vectors": str(args.vectors) if args.vectors else "random", "dim": DIM,
        "queries": args.queries, "k": args.k, "noise": args.noise,
        "seed": args.seed, "sizes": sizes, "skip": sorted(skip),
        "choose_type_default": {str(n): choose_type(default, n) for n in sizes},
        "index_settings_default": default.model_dump(), "results": results,
        "wall_s": round(time.perf_counter() - wall, 2), "environment": common.environment(),
    }
    path = common.write_json("faiss_latency", payload)
    common.console.print(f"wrote {path} ({payload['wall_s']} s)", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
