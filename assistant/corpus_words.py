"""The corpus's own words: what the person-name tagger must not mask on its own.

The name tagger learned from general text flags capitalised words it does not know: "At Contoso, ...", "lab tests,
X-rays, and imaging tests", "the Chief Executive Officer". On the full Contoso dev scorecard 6 of 290 answers
carried such a false [PERSON], and the synthetic training data taught the adapter to write it. A word found in at
least `min_chunks` chunks of the indexed documents is the corpus's vocabulary (the company's, products' and plans'
names, job titles); a real person's name in a policy corpus is rare (a contact line), so it stays masked. The names
the rules find (after a title, or a cue such as "contact") are masked regardless (finetune/pii.py).

Counted from the BM25 index's term columns (stemmed terms; a hyphenated word counts by its rarest term), so it
needs no pass over the chunks and follows every ingest. Not a library's allow-list (Presidio's is a fixed list):
the corpus changes with every ingest and nobody should have to list a company's vocabulary by hand.
"""

from __future__ import annotations

from functools import lru_cache

from ingestion.index_store import IndexStore


class CorpusWords:
    def __init__(self, store: IndexStore, min_chunks: int):
        self.store = store
        self.min_chunks = min_chunks  # chunks a word must occur in to count as the corpus's own
        self._generations: tuple = ()

    def __call__(self, word: str) -> bool:
        generations = tuple((c, self.store.docstore.generation(c)) for c in self.store.docstore.collections())
        if generations != self._generations:  # an ingest since: count again
            self._generations = generations
            self._count.cache_clear()
        return self._count(word.lower()) >= self.min_chunks

    @lru_cache(maxsize=4096)
    def _count(self, word: str) -> int:
        return max((self.store.bm25(c).document_frequency(word) for c, _ in self._generations), default=0)
