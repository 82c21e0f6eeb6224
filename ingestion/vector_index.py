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
    if settings.type != "auto":
        return settings.type
    return "hnsw" if count >= settings.auto_approximate_min_vectors else "flat"


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str, settings: IndexSettings):
        self.index = index
        self.kind = kind
        self.settings = settings
        self._tune()

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, dim: int, settings: IndexSettings) -> "VectorIndex":
        kind = choose_type(settings, len(ids))
        if kind == "ivf" and len(ids) < 1000:
            kind = "flat"  # IVF needs enough vectors to train its lists; exact search is cheap here
        if kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = settings.hnsw_ef_construction
        elif kind == "ivf":
            nlist = max(16, int(4 * math.sqrt(len(ids))))
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
    def load(cls, path: Path, settings: IndexSettings) -> "VectorIndex":
        index = faiss.read_index(str(path))
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
        kind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "ivf" if isinstance(inner, faiss.IndexIVF) else "flat"
        return cls(index, kind, settings)

    def ids(self) -> np.ndarray:
        """The chunk ids held, in insertion order (int64)."""
        return faiss.vector_to_array(self.index.id_map).astype(np.int64, copy=False)

    def can_remove(self) -> bool:
        return self.kind != "hnsw"  # FAISS's HNSW graph has no delete: a removal means a rebuild

    def update(self, add_ids: np.ndarray, add_vectors: np.ndarray, remove_ids: np.ndarray) -> None:
        """Remove then add in place (the caller checked `can_remove` when removing)."""
        if len(remove_ids):
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
        k = max(1, min(k, self.size)) if self.size else 1
        if self.size == 0:
            return np.zeros((len(query), 0), np.float32), np.zeros((len(query), 0), np.int64)
        params = None
        if allowed_ids is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            params = self._params(selector)
        scores, ids = self.index.search(query, k, params=params)
        return scores, ids

    def _params(self, selector):
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.settings.hnsw_ef_search)
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.ivf_nprobe)
        return faiss.SearchParameters(sel=selector)

    def _tune(self) -> None:
        inner = faiss.downcast_index(self.index.index) if isinstance(self.index, faiss.IndexIDMap2) else self.index
        if isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = self.settings.hnsw_ef_search
        elif isinstance(inner, faiss.IndexIVF):
            inner.nprobe = self.settings.ivf_nprobe
