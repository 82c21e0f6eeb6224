"""FAISS dense index of one collection: build by configured type, save atomically, search.

Vectors are L2-normalised, so inner product is cosine similarity. FAISS ids are the
docstore's chunk ids (IndexIDMap2), which lets a search be restricted to some documents
with an IDSelector. Files are read with `faiss.read_index` (FAISS's own format, no pickle).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from assistant.settings import IndexSettings


def choose_type(settings: IndexSettings, count: int) -> str:
    """`auto`: exact search below `auto_approximate_min_vectors`, IVF above. Not HNSW: on 1M real-text chunks
    (bench/scale_corpus.py + bench/faiss_latency.py --vectors) HNSW kept recall@10 at 0.76 (efSearch 128) to 0.91
    (efConstruction 200, efSearch 512) against exact search, IVF at nprobe 64 kept 0.96 at a p95 of 2.8 ms; and
    IVF deletes for real where HNSW leaves tombstones."""
    if settings.type != "auto":
        return settings.type
    return "ivf" if count >= settings.auto_approximate_min_vectors else "flat"


def ivf_lists(count: int) -> int:
    """4·√n lists (FAISS's rule of thumb), at most one per 39 vectors (k-means wants that many points per list)."""
    return max(1, min(int(4 * math.sqrt(count)), count // 39))


def _inner(index: faiss.Index) -> faiss.Index:
    """The index an IndexIDMap2 wraps, as its own type (flat, HNSW or IVF)."""
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str, settings: IndexSettings, deleted: np.ndarray | None = None):
        self.index = index
        self.kind = kind
        self.settings = settings
        # Tombstones: ids still in an HNSW graph (FAISS's HNSW cannot delete) that searches skip.
        self.deleted = np.unique(np.asarray(deleted if deleted is not None else [], dtype=np.int64))
        self._tune()

    @property
    def size(self) -> int:
        """Vectors stored, tombstoned ones included (what the file holds)."""
        return int(self.index.ntotal)

    @property
    def live_size(self) -> int:
        return self.size - len(self.deleted)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, settings: IndexSettings) -> "VectorIndex":
        kind = choose_type(settings, len(ids))
        if kind == "ivf" and not len(ids):
            kind = "flat"  # nothing to train lists on
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = settings.hnsw_ef_construction
        elif kind == "ivf":
            nlist = ivf_lists(len(ids))
            quantizer = faiss.IndexFlatIP(dim)
            base = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            base.train(vectors)
        else:
            base = faiss.IndexFlatIP(dim)
        index = faiss.IndexIDMap2(base)
        if len(ids):
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        return cls(index, kind, settings)

    @classmethod
    def load(cls, path: Path, settings: IndexSettings, deleted: np.ndarray | None = None) -> "VectorIndex":
        index = faiss.read_index(str(path))
        inner = _inner(index)
        kind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"
        return cls(index, kind, settings, deleted)

    def all_ids(self) -> np.ndarray:
        """Every id stored, tombstoned ones included, in insertion order (int64)."""
        return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)

    def ids(self) -> np.ndarray:
        """The chunk ids a search can return."""
        held = self.all_ids()
        return held[~np.isin(held, self.deleted)] if len(self.deleted) else held

    def update(self, add_ids: np.ndarray, add_vectors: np.ndarray, remove_ids: np.ndarray) -> None:
        """Remove then add in place. HNSW keeps removed vectors in its graph as tombstones (FAISS's HNSW has no
        delete); the caller rebuilds once they are too many."""
        if len(remove_ids) and self.kind == "hnsw":
            self.deleted = np.union1d(self.deleted, np.asarray(remove_ids, dtype=np.int64))
        elif len(remove_ids):
            removed = self.index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(remove_ids, dtype=np.int64)))
            if removed != len(remove_ids):
                raise RuntimeError(f"FAISS removed {removed} of {len(remove_ids)} ids")
        if len(add_ids):
            self.index.add_with_ids(np.ascontiguousarray(add_vectors, dtype=np.float32), add_ids.astype(np.int64))

    def save(self, path: Path) -> None:
        """Write to a temporary file, fsync, then rename: readers see the old or the new file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (n_queries, k); missing results have id -1."""
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1, self.index.d)
        k = max(1, min(k, self.live_size)) if self.live_size else 1
        if self.live_size == 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        params, inner = None, None
        if allowed_ids is not None:
            allowed = np.setdiff1d(allowed_ids, self.deleted) if len(self.deleted) else allowed_ids
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params = self._params(selector)
        elif len(self.deleted):
            inner = faiss.IDSelectorBatch(np.ascontiguousarray(self.deleted, dtype=np.int64))
            params = self._params(faiss.IDSelectorNot(inner))  # `inner` stays referenced until the search is done
        scores, ids = self.index.search(query, k, params=params)
        return scores, ids

    @property
    def lists(self) -> int:
        """IVF lists (0 for other kinds)."""
        inner = _inner(self.index)
        return int(inner.nlist) if isinstance(inner, faiss.IndexIVF) else 0

    def _params(self, selector):
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.settings.hnsw_ef_search)
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.ivf_nprobe)
        return faiss.SearchParameters(sel=selector)

    def _tune(self) -> None:
        inner = _inner(self.index)
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = self.settings.hnsw_ef_search
        elif isinstance(inner, faiss.IndexIVF):
            inner.nprobe = self.settings.ivf_nprobe
