"""BM25 keyword index of one collection (bm25s, English stopwords, Snowball stemming).

Saved beside the FAISS file at the end of each ingest (`index/bm25/<collection>/`, bm25s's own
numpy + JSON files, no pickle) with the docstore generation it was built from, so the first search
of a large collection loads it instead of tokenising every chunk again. A directory whose
generation does not match the docstore (a crash between the writes) is ignored and rebuilt, as
the FAISS file is: the docstore stays the source of truth.

Large collections score with bm25s's numba backend (numba is in the lock): at 1M chunks a query took p50 / p95
9.3 / 40.8 ms with numpy and 3.1 / 6.7 ms with numba (bench/scale_corpus.py, 230 golden questions). Below
NUMBA_MIN_CHUNKS numpy stays: numba compiles on the first search of every process (4.7 s measured here), which a
small collection never wins back.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")
NUMBA_MIN_CHUNKS = 200_000


def backend_for(chunks: int) -> str:
    from bm25s import NUMBA_AVAILABLE  # noqa: PLC0415  (bm25s decides whether numba imports)

    return "numba" if chunks >= NUMBA_MIN_CHUNKS and NUMBA_AVAILABLE else "numpy"


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER.stemWords, return_ids=False, show_progress=False)


class BM25Index:
    def __init__(self, chunk_ids: np.ndarray, texts: list[str] | None, model: bm25s.BM25 | None = None):
        self.chunk_ids = chunk_ids
        self._position = {int(cid): i for i, cid in enumerate(chunk_ids)}
        self.model = model or bm25s.BM25(backend=backend_for(len(chunk_ids)))
        if texts and model is None:
            self.model.index(_tokenize(texts), show_progress=False)

    def save(self, directory: Path, generation: int) -> None:
        """Write into a temporary directory, then swap it in: a reader sees the old files, the new ones, or none."""
        tmp = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.size:
            self.model.save(str(tmp), show_progress=False)
        np.save(tmp / "chunk_ids.npy", np.asarray(self.chunk_ids, dtype=np.int64), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps({"generation": generation, "count": self.size}))
        old = directory.with_name(f".{directory.name}.{os.getpid()}.old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, generation: int) -> BM25Index | None:
        """The saved index if it was built from docstore `generation`, else None (the caller rebuilds)."""
        try:
            meta = json.loads((directory / "meta.json").read_text())
            if meta.get("generation") != generation:
                return None
            chunk_ids = np.load(directory / "chunk_ids.npy", allow_pickle=False)
            if len(chunk_ids) != meta.get("count"):
                return None
            model = (bm25s.BM25.load(str(directory), allow_pickle=False, backend=backend_for(len(chunk_ids)))
                     if len(chunk_ids) else None)
            return cls(chunk_ids, None, model)
        except (OSError, ValueError, KeyError):  # missing, half-swapped or damaged: rebuilt from the docstore
            return None

    @property
    def size(self) -> int:
        return len(self.chunk_ids)

    @property
    def vocabulary(self):
        """The index's terms (stemmed, stopwords out), as a read-only view: membership and iteration."""
        return self.model.vocab_dict.keys() if self.size else {}.keys()

    def document_frequency(self, word: str) -> int:
        """In how many chunks every BM25 term of `word` occurs, at least (the rarest term's count); 0 for a word
        with no term here (a stopword, one letter, unseen). Read from bm25s's term-column score matrix: a term's
        column holds one entry per chunk that contains it."""
        if not self.size:
            return 0
        terms = _tokenize([word])[0]
        ids = [self.model.vocab_dict.get(t) for t in terms]
        indptr = self.model.scores["indptr"]
        if not ids or any(i is None or i + 1 >= len(indptr) for i in ids):
            return 0
        return int(min(indptr[i + 1] - indptr[i] for i in ids))

    def search(self, query: str, k: int, allowed_ids: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) best first; only positive scores (at least one query term matched)."""
        if not self.size:
            return []
        known = self.model.vocab_dict
        tokens = [t for t in _tokenize([query])[0] if t in known]
        if not tokens:
            return []
        mask = None
        if allowed_ids is not None:
            mask = np.zeros(self.size, dtype=np.float32)
            positions = [self._position[int(i)] for i in allowed_ids if int(i) in self._position]
            mask[positions] = 1.0
        k = min(k, self.size)
        docs, scores = self.model.retrieve([tokens], k=k, show_progress=False, weight_mask=mask, n_threads=1)
        return [(int(self.chunk_ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
