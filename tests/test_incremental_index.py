"""An ingest that changes a few documents patches the collection's FAISS file (the chunks added and removed since
it was built) instead of rebuilding it from every vector, and ends with exactly the index a rebuild makes; chunk
ids never repeat, so a patch can tell a new chunk from an old one by id."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant import assembly
from ingestion.pipeline import delete_document
from ingestion.vector_index import VectorIndex
from tests.api_helpers import DOCS, settings_for
from tests.conftest import count_builds, make_corpus

MORE = {
    "security.md": "# Security\n\n## Passwords\n\nPasswords are rotated every 90 days and need 14 characters.\n\n"
    "## Laptops\n\nLaptops are encrypted with BitLocker and locked after five minutes.\n",
}
QUERIES = ["hotel cap in Berlin", "Basic plan price", "password rotation", "laptop encryption", "flights"]


def ingest(settings, directory) -> None:
    assert assembly.ingest_job(settings).run([directory]).exit_code() == 0


def sidecar(settings) -> dict:
    return json.loads((settings.home / "index" / "vectors" / f"{settings.default_collection}.json").read_text())


def assert_same_as_a_rebuild(settings) -> None:
    """The saved file holds exactly the docstore's chunks and answers as a fresh build of them does."""
    store = assembly.index_store(settings)
    try:
        collection = settings.default_collection
        saved = VectorIndex.load(settings.home / "index" / "vectors" / f"{collection}.faiss", settings.index,
                                 np.array(sidecar(settings)["deleted"], dtype=np.int64))
        ids, vectors = store.docstore.vectors(collection, store.embedder.dim)
        assert np.array_equal(np.sort(saved.ids()), ids)
        fresh = VectorIndex.build(ids, vectors, store.embedder.dim, settings.index)
        queries = store.embedder.embed(QUERIES)
        got, want = saved.search(queries, 4), fresh.search(queries, 5)
        assert np.allclose(got[0], want[0][:, :4], atol=1e-6)  # the same scores, so the same hits up to ties
        unique = np.array([[np.isclose(row, x, atol=1e-6).sum() == 1 for x in row[:4]] for row in want[0]])
        assert np.array_equal(got[1][unique], want[1][:, :4][unique])
        assert sidecar(settings)["generation"] == store.docstore.generation(collection)
    finally:
        store.close()


@pytest.fixture
def built(tmp_path):
    settings = settings_for(tmp_path / "home")
    docs = make_corpus(tmp_path / "docs", DOCS)
    ingest(settings, docs)
    return settings, docs


def test_adding_a_document_patches_the_file_without_a_rebuild(built, monkeypatch):
    settings, docs = built
    before = sidecar(settings)
    builds = count_builds(monkeypatch)
    (docs / "security.md").write_text(MORE["security.md"], encoding="utf-8")
    ingest(settings, docs)
    assert builds == []  # fails where every ingest rebuilt the collection from the docstore
    after = sidecar(settings)
    assert after["count"] > before["count"] and after["next_id"] > before["next_id"]
    assert_same_as_a_rebuild(settings)


def test_changed_and_deleted_documents_are_removed_from_the_file(built, monkeypatch):
    settings, docs = built
    builds = count_builds(monkeypatch)
    (docs / "travel.md").write_text("# Travel policy\n\n## Hotels\n\nHotel rates are capped at 150 EUR per night.\n",
                                    encoding="utf-8")
    ingest(settings, docs)  # travel.md's old chunks out, its new ones in
    store = assembly.index_store(settings)
    plans = next(d for d in store.docstore.list_documents() if d.name == "plans.md")
    assert delete_document(store, plans.id)
    store.close()
    assert builds == []
    assert_same_as_a_rebuild(settings)


def test_chunk_ids_are_never_reused_after_a_delete(built):
    settings, docs = built
    store = assembly.index_store(settings)
    collection = settings.default_collection
    top = int(store.docstore.chunk_ids(collection).max())
    newest = max(store.docstore.list_documents(), key=lambda d: d.id)  # holds the largest chunk ids
    assert delete_document(store, newest.id)
    kept = set(store.docstore.chunk_ids(collection).tolist())
    store.close()
    (docs / "security.md").write_text(MORE["security.md"], encoding="utf-8")
    ingest(settings, docs)  # re-adds the deleted document (unchanged on disk) and the new one
    store = assembly.index_store(settings)
    new = sorted(set(store.docstore.chunk_ids(collection).tolist()) - kept)
    store.close()
    assert new and new[0] > top, f"new chunks got ids {new} though ids up to {top} were used"  # SQLite reuses
    assert_same_as_a_rebuild(settings)


def test_a_file_from_before_monotonic_ids_is_rebuilt_once(built, monkeypatch):
    settings, docs = built
    path = settings.home / "index" / "vectors" / f"{settings.default_collection}.json"
    meta = sidecar(settings)
    del meta["next_id"]  # written by a version that did not record it
    path.write_text(json.dumps(meta))
    builds = count_builds(monkeypatch)
    (docs / "security.md").write_text(MORE["security.md"], encoding="utf-8")
    ingest(settings, docs)
    assert len(builds) == 1 and "next_id" in sidecar(settings)
    assert_same_as_a_rebuild(settings)


def test_hnsw_patches_additions_tombstones_removals_and_rebuilds_past_the_share(tmp_path, monkeypatch):
    settings = settings_for(tmp_path / "home", index={"type": "hnsw"})
    offices = {f"office{i}.md": f"# Office {i}\n\n## Hours\n\nOffice {i} opens at {7 + i % 3} am.\n\n## Desks\n\n"
               f"Office {i} has {20 + i} desks to book.\n" for i in range(12)}  # security.md is < 20% of chunks
    docs = make_corpus(tmp_path / "docs", {**DOCS, **MORE, **offices})
    ingest(settings, docs)
    builds = count_builds(monkeypatch)
    (docs / "extra.md").write_text("# Parking\n\nParking permits cost 30 EUR a month.\n", encoding="utf-8")
    ingest(settings, docs)
    assert builds == [] and sidecar(settings)["type"] == "hnsw" and sidecar(settings)["deleted"] == []
    store = assembly.index_store(settings)
    security = next(d for d in store.docstore.list_documents() if d.name == "security.md")
    gone = set(store.docstore.chunk_ids_of_documents(settings.default_collection, ["security.md"]).tolist())
    assert delete_document(store, security.id)  # FAISS's HNSW cannot delete: the chunks become tombstones
    store.close()
    assert builds == [] and set(sidecar(settings)["deleted"]) == gone
    retriever = assembly.retriever(settings)  # a fresh reader loads the file and its tombstones
    for query in QUERIES:
        assert all(hit.document != "security.md" for hit in retriever.search(query, k=10, mode="dense"))
    assert_same_as_a_rebuild(settings)
    store = assembly.index_store(settings)  # deleting most of the rest passes the tombstone share: a rebuild
    for doc in [d for d in store.docstore.list_documents() if d.name != "extra.md"]:
        assert delete_document(store, doc.id)
    store.close()
    assert len(builds) >= 1 and sidecar(settings)["deleted"] == []
    assert_same_as_a_rebuild(settings)


def test_a_patch_that_cannot_be_saved_leaves_a_usable_index(built, monkeypatch):
    settings, docs = built

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(VectorIndex, "save", full_disk)
    (docs / "security.md").write_text(MORE["security.md"], encoding="utf-8")
    with pytest.raises(OSError):
        assembly.ingest_job(settings).run([docs])
    monkeypatch.undo()
    retriever = assembly.retriever(settings)  # the docstore committed; the old file is stale and rebuilt in memory
    hits = retriever.search("password rotation", k=1, mode="dense")
    assert hits and hits[0].document == "security.md"


def test_ivf_patches_small_changes_and_retrains_after_growing_fourfold(tmp_path, monkeypatch):
    """IVF (what `auto` picks for large collections) patches an ingest in place, deletions included, and rebuilds
    once the collection has grown past four times the size its lists were trained for (each list too long)."""
    settings = settings_for(tmp_path / "home", index={"type": "ivf"})
    page = "# Office {i}\n\n## Hours\n\nOffice {i} opens at {h} am.\n\n## Desks\n\nOffice {i} has {d} desks to book.\n"
    offices = {f"office{i}.md": page.format(i=i, h=7 + i % 3, d=20 + i) for i in range(40)}
    docs = make_corpus(tmp_path / "docs", {**DOCS, **offices})
    ingest(settings, docs)
    first = assembly.index_store(settings, readonly=True).dense("default")
    lists, initial = first.lists, first.live_size
    builds = count_builds(monkeypatch)
    (docs / "security.md").write_text(MORE["security.md"], encoding="utf-8")
    ingest(settings, docs)
    assert builds == [] and sidecar(settings)["type"] == "ivf"  # patched
    assert_same_as_a_rebuild(settings)
    builds.clear()  # the check above builds a fresh index to compare with
    for i in range(40, 400):  # many more chunks, added in one ingest smaller than the index doubling rule's
        (docs / f"office{i}.md").write_text(page.format(i=i, h=7 + i % 3, d=20 + i), encoding="utf-8")
    ingest(settings, docs)
    assert len(builds) == 1 and builds[0] > 4 * initial  # retrained on every chunk, not patched
    assert assembly.index_store(settings, readonly=True).dense("default").lists > 2 * lists
    assert_same_as_a_rebuild(settings)
