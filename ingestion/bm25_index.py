"""BM25 keyword index of one collection (bm25s, English stopwords, Snowball stemming).

Built in memory from the docstore when a collection is opened rather than persisted:
bm25s indexes about 100k short chunks per second here, so a separate file would only add
a second thing that can disagree with the docstore after a crash.
"""

from __future__ import annotations

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER.stemWords, return_ids=False, show_progress=False)


class BM25Index:
    def __init__(self, chunk_ids: np.ndarray, texts: list[str]):
        self.chunk_ids = chunk_ids
        self._position = {int(cid): i for i, cid in enumerate(chunk_ids)}
        self.model = bm25s.BM25()
        if texts:
            self.model.index(_tokenize(texts), show_progress=False)

    @property
    def size(self) -> int:
        return len(self.chunk_ids)

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
