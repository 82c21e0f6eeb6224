"""BM25 is saved at the end of an ingest and loaded by the first search, not rebuilt; a saved index that does
not match the docstore's generation (a crash between the writes) is ignored and rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import assembly
from ingestion.index_store import IndexStore
from tests.api_helpers import DOCS, settings_for
from tests.conftest import make_corpus


@pytest.fixture
def settings(tmp_path):
    settings = settings_for(tmp_path / "home")
    assert assembly.ingest_job(settings).run([make_corpus(tmp_path / "docs", DOCS)]).exit_code() == 0
    return settings


def test_the_first_search_loads_the_saved_index_instead_of_rebuilding(settings, monkeypatch):
    saved = settings.index_dir / "bm25" / "default"
    store = assembly.index_store(settings, readonly=True)
    assert json.loads((saved / "meta.json").read_text())["generation"] == store.docstore.generation("default")
    rebuilt = store._build_bm25("default").search("hotel rates Berlin", 5)

    def no_rebuild(self, collection):
        raise AssertionError("BM25 rebuilt from the docstore although a saved index matches")

    monkeypatch.setattr(IndexStore, "_build_bm25", no_rebuild)
    fresh = assembly.index_store(settings, readonly=True)
    loaded = fresh.bm25("default")
    assert loaded.search("hotel rates Berlin", 5) == rebuilt and rebuilt
    allowed = np.array([rebuilt[0][0]])
    assert [cid for cid, _ in loaded.search("hotel rates Berlin", 5, allowed)] == [rebuilt[0][0]]


def test_a_saved_index_of_another_generation_is_rebuilt(settings):
    meta = settings.index_dir / "bm25" / "default" / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "generation": -1}))  # as if the crash came first
    store = assembly.index_store(settings, readonly=True)
    calls = []
    original = store._build_bm25
    store._build_bm25 = lambda collection: calls.append(collection) or original(collection)
    assert store.bm25("default").search("Plus plan priority support", 3)
    assert calls == ["default"]


def test_a_large_collection_scores_with_numba_and_finds_what_numpy_finds(tmp_path, monkeypatch):
    """Above NUMBA_MIN_CHUNKS the index scores with bm25s's numba backend, also after a save and load, with the
    same hits and scores as numpy, a document filter included (the threshold is lowered here: 200,000 chunks
    would take minutes to tokenise)."""
    import numpy as np

    pytest.importorskip("numba")
    from ingestion import bm25_index
    from ingestion.bm25_index import BM25Index

    texts = [f"office {i} opens at {7 + i % 3} am and has {20 + i} desks; parking costs {i % 5} euro"
             for i in range(300)]
    texts += ["hotel rates in Berlin are capped at 120 EUR a night", "economy flights under six hours"]
    ids = np.arange(len(texts), dtype=np.int64) * 3 + 7
    plain = BM25Index(ids, texts)
    monkeypatch.setattr(bm25_index, "NUMBA_MIN_CHUNKS", 100)
    fast = BM25Index(ids, texts)
    assert plain.model.backend == "numpy" and fast.model.backend == "numba"
    plain.save(tmp_path / "bm25", generation=3)  # saved small (numpy), loaded large: numba
    loaded = BM25Index.load(tmp_path / "bm25", generation=3)
    assert loaded.model.backend == "numba"
    allowed = ids[::4]

    def same(got, want):  # equal scores; equal ids where a score has no near tie (float32 sums: either order)
        scores = [s for _, s in want]
        assert np.allclose([s for _, s in got], scores)
        untied = [np.isclose(scores, s, rtol=1e-3).sum() == 1 and s > scores[-1] * (1 + 1e-3) for s in scores]
        assert all(g == w for (g, _), (w, _), alone in zip(got, want, untied) if alone)  # the last may tie outside k

    for query in ["hotel Berlin", "office 12 desks", "parking 3 euro", "economy flights"]:
        want = plain.search(query, 5)
        same(fast.search(query, 5), want)
        same(loaded.search(query, 5), want)
        same(loaded.search(query, 5, allowed), plain.search(query, 5, allowed))
    assert fast.search("hotel Berlin", 1)[0][0] == ids[300]
