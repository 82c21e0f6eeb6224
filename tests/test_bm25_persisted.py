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
