"""The approximate FAISS path a large collection takes: `index.type: auto` switches to IVF at
`index.auto_approximate_min_vectors`; HNSW and IVF keep recall@10 against exact search, honour document filters,
survive a save/load, and serve a real ingest end to end."""

from __future__ import annotations

import numpy as np
import pytest

from assistant import assembly
from assistant.settings import IndexSettings
from ingestion.retriever import Retriever
from ingestion.vector_index import VectorIndex
from tests.api_helpers import DOCS, settings_for
from tests.conftest import make_corpus

DIM = 48


def clustered(n: int, seed: int = 7) -> np.ndarray:
    """Unit vectors around 40 centres: like embeddings, neighbours are close and the rest far (not uniform noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, DIM))
    vectors = centres[rng.integers(0, 40, n)] + 0.35 * rng.normal(size=(n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(approx: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> float:
    _, found = approx.search(queries, 10)
    _, truth = exact.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))


def test_auto_switches_to_ivf_at_the_threshold():
    settings = IndexSettings(auto_approximate_min_vectors=300)
    vectors = clustered(300)
    assert VectorIndex.build(np.arange(299), vectors[:299], DIM, settings).kind == "flat"
    index = VectorIndex.build(np.arange(300), vectors, DIM, settings)
    assert index.kind == "ivf" and index.lists == 7  # one list per 39 vectors at most (k-means' minimum)
    assert VectorIndex.build(np.arange(1_000_000)[:1], vectors[:1], DIM, IndexSettings(type="ivf")).lists == 1


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_search_keeps_recall_filters_and_survives_a_reload(kind, tmp_path):
    vectors, queries = clustered(4000), clustered(50, seed=11)
    ids = np.arange(10_000, 14_000)
    settings = IndexSettings(type=kind)
    approx = VectorIndex.build(ids, vectors, DIM, settings)
    exact = VectorIndex.build(ids, vectors, DIM, IndexSettings(type="flat"))
    assert approx.kind == kind and approx.size == 4000
    assert recall_at_10(approx, exact, queries) >= 0.9
    allowed = ids[::7]  # a document filter: only these chunks may come back
    _, found = approx.search(queries[:5], 10, allowed_ids=allowed)
    assert set(found[found >= 0].ravel()) <= set(allowed) and (found >= 0).sum() > 0
    approx.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", settings)
    assert loaded.kind == kind and np.array_equal(loaded.search(queries, 10)[1], approx.search(queries, 10)[1])


def test_a_collection_over_the_threshold_is_served_by_ivf_end_to_end(tmp_path):
    settings = settings_for(tmp_path / "home", index={"auto_approximate_min_vectors": 2})
    assert assembly.ingest_job(settings).run([make_corpus(tmp_path / "docs", DOCS)]).exit_code() == 0
    store = assembly.index_store(settings, readonly=True)
    assert store.dense("default").kind == "ivf"
    hits = Retriever(store, settings.retrieval).search("hotel rates per night in Berlin", k=3)
    assert hits and hits[0].document.endswith("travel.md")
