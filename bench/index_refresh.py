"""An ingest's index refresh: the FAISS file patched with the changed chunks (ours) vs rebuilt from every vector
in the docstore (what every ingest did before), on the same index, in one run.

    .venv/bin/python bench/index_refresh.py [--chunks 100000] [--types flat,hnsw] [--added 60] [--dim 384]

Setup per index type: a fresh docstore of --chunks synthetic chunks (unit random vectors of --dim, 100 chunks per
document, short texts), refreshed once so its FAISS file exists. Then, as an ingest of one new document of --added
chunks (and, in a second scenario, also one changed document) would: the FAISS half of `IndexStore.refresh` (ours:
the patch, which adds the new chunk ids and removes the changed document's old ones, as tombstones in HNSW, which
cannot delete), and on an identical copy a forced full rebuild (`_rebuild_dense`). Both end with the FAISS file and sidecar saved;
the two files' ids are checked equal. Reported: seconds of each, their ratio, peak RSS. BM25 is left out (it is
rebuilt in both cases). Writes bench/results/index_refresh.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np

from assistant.settings import IndexSettings
from ingestion.chunking import Chunk
from ingestion.embedder import HashEmbedder
from ingestion.index_store import IndexStore

COLLECTION = "bench"


def add_document(store: IndexStore, name: str, count: int, rng: np.random.Generator) -> None:
    vectors = rng.normal(size=(count, store.embedder.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"{name} passage {i} about policy number {rng.integers(1_000_000)}.", "", 1, name, "text", 12)
              for i in range(count)]
    store.docstore.replace_document(COLLECTION, name, name, name, 1, 1, "bench", chunks, vectors)


def make_store(root: Path, kind: str, chunks: int, dim: int) -> Path:
    home = root / f"{kind}-base"
    store = IndexStore(home, HashEmbedder(dim), IndexSettings(type=kind))
    rng = np.random.default_rng(0)
    for start in range(0, chunks, 100):
        add_document(store, f"doc-{start // 100}", min(100, chunks - start), rng)
    store.refresh(COLLECTION)
    store.close()
    return home


def timed_refresh(home: Path, kind: str, dim: int, added: int, change: bool,
                  full: bool) -> tuple[float, np.ndarray, bool]:
    store = IndexStore(home, HashEmbedder(dim), IndexSettings(type=kind))
    rng = np.random.default_rng(1)
    add_document(store, "new-document", added, rng)
    if change:
        add_document(store, "doc-0", 100, rng)  # a changed document: its old chunks go, new ones come
    generation = store.docstore.generation(COLLECTION)
    started = time.perf_counter()
    patched = False
    if full:  # what every ingest did before
        store._rebuild_dense(COLLECTION, generation)
    else:  # the FAISS half of IndexStore.refresh
        patched = store._update_dense(COLLECTION, generation) is not None
        if not patched:
            store._rebuild_dense(COLLECTION, generation)
    seconds = time.perf_counter() - started
    ids = np.sort(store.dense(COLLECTION).ids())
    store.close()
    return seconds, ids, patched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--types", default="flat,hnsw")
    parser.add_argument("--added", type=int, default=60)
    parser.add_argument("--dim", type=int, default=384)
    args = parser.parse_args()
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="ragtune-refresh-") as tmp:
        root = Path(tmp)
        for kind in args.types.split(","):
            common.console.print(f"[bold]{kind}[/]: building a {args.chunks:,}-chunk docstore and index")
            base = make_store(root, kind, args.chunks, args.dim)
            copies = [root / f"{kind}-{i}" for i in range(4)]
            for copy in copies:
                shutil.copytree(base, copy)
            for n, change in enumerate((False, True)):
                scenario = "new document + changed document" if change else "new document"
                patch_s, patch_ids, patched = timed_refresh(copies[2 * n], kind, args.dim, args.added, change, False)
                rebuild_s, rebuild_ids, _ = timed_refresh(copies[2 * n + 1], kind, args.dim, args.added, change, True)
                assert np.array_equal(patch_ids, rebuild_ids), "patched and rebuilt indexes hold different chunks"
                note = ("patched" + (" (tombstones)" if kind == "hnsw" and change else "")) if patched else "rebuilt"
                results[f"{kind}: {scenario}"] = {"patch_s": patch_s, "rebuild_s": rebuild_s,
                                                   "ratio": rebuild_s / patch_s, "ours_did": note}
                rows.append((kind, scenario, args.chunks, patch_s, rebuild_s, f"{rebuild_s / patch_s:.1f}x", note))
            for path in (base, *copies):
                shutil.rmtree(path)
    common.console.print(common.table(
        f"Index refresh after an ingest of a new document ({args.added} chunks), and of a new and a changed one "
        f"(100 chunks); load {os.getloadavg()[0]:.1f}",
        ["type", "ingest", "chunks", "ours: refresh s", "full rebuild s", "rebuild / ours", "what ours did"], rows, left=2))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    common.console.print(f"peak RSS {peak:.0f} MB")
    path = common.write_json("index_refresh", {"environment": common.environment(), "args": vars(args),
                                               "results": results, "peak_rss_mb": peak})
    common.console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
