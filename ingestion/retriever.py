"""Hybrid retrieval: dense FAISS and BM25 rankings fused by weighted reciprocal rank fusion.

This is the retrieval API the chat service, synthetic QA and evaluation call. A search can
be restricted to collections (access control lives above this) and to documents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Literal, Sequence

from assistant.settings import RetrievalSettings
from ingestion.index_store import IndexStore, check_collection_name
from ingestion.page_expansion import Expanded, PageExpander
from ingestion.unknown_names import Kinds, UnknownNames

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass
class SearchHit:
    chunk_id: int
    collection: str
    document: str  # file name, as cited
    source: str
    page: int | None  # 1-based page the passage starts on; None for formats without pages
    page_end: int | None  # page it ends on
    heading: str
    text: str
    score: float  # fused score (RRF), higher is better
    dense_score: float | None  # cosine similarity, when the dense ranking found it
    bm25_score: float | None
    rank: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Retriever:
    def __init__(self, store: IndexStore, settings: RetrievalSettings):
        self.store = store
        self.settings = settings

    def search(
        self,
        query: str,
        k: int | None = None,
        collections: Sequence[str] | None = None,
        documents: Sequence[str] | None = None,
        mode: Mode | None = None,
    ) -> list[SearchHit]:
        return self.search_many([query], k, collections, documents, mode)[0]

    def search_many(
        self,
        queries: Sequence[str],
        k: int | None = None,
        collections: Sequence[str] | None = None,
        documents: Sequence[str] | None = None,
        mode: Mode | None = None,
    ) -> list[list[SearchHit]]:
        """Search several queries at once (one embedding batch); results per query, best first."""
        k = k or self.settings.k
        mode = mode or self.settings.mode
        names = [check_collection_name(c) for c in collections] if collections else self.store.docstore.collections()
        depth = max(self.settings.candidates, k)
        dense: list[dict[int, float]] = [{} for _ in queries]
        lexical: list[dict[int, float]] = [{} for _ in queries]
        named: list[dict[int, float]] = [{} for _ in queries]  # chunk id -> how well the question names its document
        query_vectors = self.store.embedder.embed(list(queries)) if mode != "bm25" and queries else None
        for name in names:
            allowed = self.store.docstore.chunk_ids_of_documents(name, documents) if documents else None
            if allowed is not None and not len(allowed):
                continue
            if query_vectors is not None:
                scores, ids = self.store.dense(name).search(query_vectors, depth, allowed)
                for row in range(len(queries)):
                    dense[row].update({int(i): float(s) for s, i in zip(scores[row], ids[row]) if i >= 0})
            if mode != "dense":
                bm25 = self.store.bm25(name)
                for row, query in enumerate(queries):
                    lexical[row].update(bm25.search(query, depth, allowed))
            if self.settings.metadata_weight > 0:
                matcher = self.store.doc_matcher(name)
                for row, query in enumerate(queries):
                    named[row].update(matcher.chunk_scores(query, [*dense[row], *lexical[row]]))
        return [self._fuse(d, b, m, k) for d, b, m in zip(dense, lexical, named)]

    def unknown_names(self, question: str, collections: Sequence[str] | None = None,
                      kinds: Kinds = "names") -> list[str]:
        """The names (of `kinds`) `question` uses that no chunk of the collections contains (ingestion/unknown_names.py)."""
        names = [check_collection_name(c) for c in collections] if collections else self.store.docstore.collections()
        return UnknownNames([self.store.bm25(name) for name in names], kinds)(question)

    def expand(self, hits: Sequence[SearchHit], units: int, max_chars: int,
               max_chars_without_pages: int | None = None, room: int | None = None) -> list[Expanded]:
        """The whole pages of the first `units` distinct hits, each cut to `max_chars` around its hit (a window of
        `max_chars_without_pages` in formats without pages) and to `room`; see ingestion/page_expansion.py."""
        return PageExpander(self.store.docstore, max_chars, max_chars_without_pages).expand(hits, units, room)

    def units(self, hits: Sequence[SearchHit], max_chars: int, max_chars_without_pages: int | None = None,
              room: int | None = None) -> Iterator[Expanded]:
        """`expand` one unit at a time, read only as asked for (a unit the retrieval rail drops: the next one)."""
        return PageExpander(self.store.docstore, max_chars, max_chars_without_pages).units(hits, room)

    def _fuse(self, dense: dict[int, float], lexical: dict[int, float], named: dict[int, float], k: int) -> list[SearchHit]:
        depth = max(self.settings.candidates, k)
        dense_ranked = sorted(dense, key=dense.get, reverse=True)[:depth]
        bm25_ranked = sorted(lexical, key=lexical.get, reverse=True)[:depth]
        fused: dict[int, float] = {}
        for weight, ranking in ((self.settings.dense_weight, dense_ranked), (self.settings.bm25_weight, bm25_ranked)):
            for rank, chunk_id in enumerate(ranking):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        # A named document's chunks gain up to what rank 1 of one ranking is worth (at metadata_weight 1).
        boost = self.settings.metadata_weight / (self.settings.rrf_k + 1)
        for chunk_id, share in named.items():
            if chunk_id in fused:
                fused[chunk_id] += boost * share
        ranked = sorted(fused, key=lambda cid: (-fused[cid], cid))
        if self.settings.collapse_pages:
            rows = self.store.docstore.chunks(ranked)
            top = _one_per_page(ranked, rows, k)
        else:
            top = ranked[:k]
            rows = self.store.docstore.chunks(top)
        hits = []
        for position, chunk_id in enumerate(top, start=1):
            row = rows.get(chunk_id)
            if row is None:  # deleted between ranking and lookup
                continue
            hits.append(
                SearchHit(
                    chunk_id=chunk_id,
                    collection=row.collection,
                    document=row.document,
                    source=row.source,
                    page=row.page,
                    page_end=row.page_end,
                    heading=row.heading,
                    text=row.text,
                    score=round(fused[chunk_id], 6),
                    dense_score=_round(dense.get(chunk_id)),
                    bm25_score=_round(lexical.get(chunk_id)),
                    rank=position,
                )
            )
        return hits


def _one_per_page(ranked: list[int], rows: dict, k: int) -> list[int]:
    """The first `k` of `ranked` keeping only the best chunk of each (document, page); chunks without a
    page (Markdown, HTML, text) are never collapsed."""
    seen: set[tuple[int, int]] = set()
    top: list[int] = []
    for chunk_id in ranked:
        row = rows.get(chunk_id)
        if row is None:
            continue
        if row.page is not None:
            key = (row.document_id, row.page)
            if key in seen:
                continue
            seen.add(key)
        top.append(chunk_id)
        if len(top) == k:
            break
    return top


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)

