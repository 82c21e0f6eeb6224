"""The index on disk: SQLite docstore + one FAISS file per collection + a manifest.

Layout under `<home>/index/`: `docstore.sqlite` (source of truth), `vectors/<collection>.faiss`
with a sidecar `.json` naming the docstore generation it was built from, and
`manifest.json` (embedder id, dimension, chunking parameters) for people and scripts.
At the end of an ingest the FAISS file is patched with the chunks added and removed since it was built
(chunk ids only grow; the sidecar's `next_id` says which ids are new), or rebuilt when it cannot be.
A FAISS file whose generation does not match the docstore when a search opens it (a crash between the
two writes, or a corrupt file) is rebuilt from the vectors in the docstore, so the index always loads.
The sidecar records the FAISS file's SHA-256, checked before faiss parses it (a damaged file can
crash FAISS's reader rather than raise).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from assistant.integrity import sha256_file
from assistant.settings import IndexSettings
from ingestion.bm25_index import BM25Index
from ingestion.doc_match import DocumentMatcher
from ingestion.docstore import DocStore
from ingestion.embedder import Embedder
from ingestion.vector_index import VectorIndex, choose_type, ivf_lists

log = logging.getLogger(__name__)

# An HNSW collection is rebuilt once tombstones (deleted chunks still in its graph) exceed this share: they cost
# graph hops and memory, and a search skips them one by one.
TOMBSTONE_SHARE = 0.2
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class IndexStoreError(RuntimeError):
    """The index cannot be used as configured; the message says what to do."""


def check_collection_name(name: str) -> str:
    if not _COLLECTION_NAME.match(name):
        raise IndexStoreError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


class IndexStore:
    def __init__(self, index_dir: Path, embedder: Embedder, settings: IndexSettings, readonly: bool = False):
        self.dir = index_dir
        self.embedder = embedder
        self.settings = settings
        self.readonly = readonly
        db_path = index_dir / "docstore.sqlite"
        if readonly and not db_path.exists():
            raise IndexStoreError(f"no index at {index_dir}: run `ragtune ingest PATH` first")
        self.docstore = DocStore(db_path, readonly=readonly)
        self._check_embedder()
        self._lock = threading.Lock()
        self._dense: dict[str, tuple[int, VectorIndex]] = {}
        self._bm25: dict[str, tuple[int, BM25Index]] = {}
        self._matchers: dict[str, tuple[int, DocumentMatcher]] = {}

    def close(self) -> None:
        self.docstore.close()

    def _check_embedder(self) -> None:
        stored = self.docstore.get_meta("embedder_id")
        if stored is None:
            if not self.readonly:
                self.docstore.set_meta("embedder_id", self.embedder.id)
                self.docstore.set_meta("dim", str(self.embedder.dim))
            return
        if stored != self.embedder.id:
            raise IndexStoreError(
                f"the index at {self.dir} was built with embedder {stored!r}, but {self.embedder.id!r} is configured; "
                "vectors of different models cannot be mixed: use another --home, or delete the index and ingest again"
            )

    def write_manifest(self, chunking: dict) -> None:
        manifest = {
            "embedder_id": self.embedder.id,
            "dim": self.embedder.dim,
            "max_tokens": self.embedder.max_tokens,
            "chunking": chunking,
            "collections": {
                c: {"generation": self.docstore.generation(c), "documents": len(self.docstore.list_documents(c))}
                for c in self.docstore.collections()
            },
        }
        _atomic_write(self.dir / "manifest.json", json.dumps(manifest, indent=2))

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer per index at a time (a second `ragtune ingest` waits, it does not interleave)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".writer.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- per-collection search structures ---------------------------------------
    def dense(self, collection: str) -> VectorIndex:
        generation = self.docstore.generation(collection)
        with self._lock:
            cached = self._dense.get(collection)
            if cached and cached[0] == generation:
                return cached[1]
            index = self._load_dense(collection, generation) or self._rebuild_dense(collection, generation, strict=False)
            self._dense[collection] = (generation, index)
            return index

    def bm25(self, collection: str) -> BM25Index:
        """The collection's BM25 index: cached, else the saved one of this docstore generation, else rebuilt."""
        generation = self.docstore.generation(collection)
        with self._lock:
            cached = self._bm25.get(collection)
            if cached and cached[0] == generation:
                return cached[1]
            index = BM25Index.load(self._bm25_dir(collection), generation) or self._build_bm25(collection)
            self._bm25[collection] = (generation, index)
            return index

    def doc_matcher(self, collection: str) -> DocumentMatcher:
        """Which documents of `collection` a question names (built from the docstore, cached per generation)."""
        generation = self.docstore.generation(collection)
        with self._lock:
            cached = self._matchers.get(collection)
            if cached and cached[0] == generation:
                return cached[1]
            matcher = DocumentMatcher(*self.docstore.document_headers(collection))
            self._matchers[collection] = (generation, matcher)
            return matcher

    def refresh(self, collection: str) -> VectorIndex:
        """Bring a collection's FAISS file and BM25 index up to date now (end of an ingest that changed it): the
        FAISS file is patched with the chunks added and removed since it was built when it can be, else rebuilt."""
        with self._lock:
            generation = self.docstore.generation(collection)
            index = self._update_dense(collection, generation) or self._rebuild_dense(collection, generation)
            self._dense[collection] = (generation, index)
            bm25 = self._build_bm25(collection)
            try:
                bm25.save(self._bm25_dir(collection), generation)
            except OSError as exc:  # disk full or read-only: searches rebuild it in memory, as before
                log.warning("could not save the BM25 index for %r (%s); it is rebuilt at first search", collection, exc)
            self._bm25[collection] = (generation, bm25)
            return index

    def _build_bm25(self, collection: str) -> BM25Index:
        pairs = list(self.docstore.texts(collection))
        return BM25Index(np.array([p[0] for p in pairs], dtype=np.int64), [p[1] for p in pairs])

    def _bm25_dir(self, collection: str) -> Path:
        return self.dir / "bm25" / collection

    def remove_stale_temp_files(self) -> None:
        """Delete half-written files that a killed writer left (call while holding the writer lock)."""
        for tmp in [*self.dir.glob(".*.tmp"), *(self.dir / "vectors").glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)
        for tmp in [*(self.dir / "bm25").glob(".*.tmp"), *(self.dir / "bm25").glob(".*.old")]:
            shutil.rmtree(tmp, ignore_errors=True)

    def _paths(self, collection: str) -> tuple[Path, Path]:
        base = self.dir / "vectors"
        return base / f"{collection}.faiss", base / f"{collection}.json"

    def _load_dense(self, collection: str, generation: int) -> VectorIndex | None:
        faiss_path, meta_path = self._paths(collection)
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("generation") != generation or meta.get("embedder_id") != self.embedder.id:
                return None
            if "sha256" in meta and sha256_file(faiss_path) != meta["sha256"]:
                log.warning("FAISS file for %r does not match its recorded SHA-256; rebuilding from the docstore", collection)
                return None
            index = VectorIndex.load(faiss_path, self.settings, np.asarray(meta.get("deleted", []), dtype=np.int64))
            if index.size != meta.get("count") or index.index.d != self.embedder.dim:
                return None
            return index
        except FileNotFoundError:
            return None
        except Exception as exc:  # a corrupt or truncated file: the docstore still has every vector
            log.warning("FAISS file for %r unusable (%s); rebuilding from the docstore", collection, exc)
            return None

    def _update_dense(self, collection: str, generation: int) -> VectorIndex | None:
        """The saved FAISS file patched to `generation` (chunks added since it was built, chunks deleted), saved;
        None when it must be rebuilt instead: no usable file, a file from before chunk ids were monotonic (no
        `next_id`), ids that do not add up, another index type now due, an update that would more than double the
        index (IVF then retrains its lists), an IVF grown over 4x since its lists were trained, or HNSW tombstones
        over TOMBSTONE_SHARE of its vectors."""
        faiss_path, meta_path = self._paths(collection)
        try:
            meta = json.loads(meta_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if "next_id" not in meta or meta.get("embedder_id") != self.embedder.id:
            return None
        stale = meta.get("generation")
        index = self._load_dense(collection, stale) if stale is not None else None
        if index is None:
            return None
        next_id = int(meta["next_id"])
        held, now = index.ids(), self.docstore.chunk_ids(collection)
        removed = np.setdiff1d(held, now, assume_unique=True)
        added = now[now >= next_id]
        kept_expected = now[now < next_id]
        if (held >= next_id).any() or len(held) - len(removed) != len(kept_expected):
            log.warning("FAISS file for %r does not match the docstore's ids; rebuilding", collection)
            return None
        if len(added) > max(index.live_size, 1000):
            return None
        if index.kind == "hnsw" and len(index.deleted) + len(removed) > TOMBSTONE_SHARE * (index.size + len(added)):
            return None
        if choose_type(self.settings, len(kept_expected) + len(added)) != index.kind:
            return None
        if index.kind == "ivf" and index.lists < ivf_lists(len(kept_expected) + len(added)) // 2:
            return None  # grown over 4x since its lists were trained: each list too long, retrain
        add_ids, vectors = self.docstore.vectors_from(collection, self.embedder.dim, next_id)
        index.update(add_ids, vectors, removed)
        self._save_dense(collection, generation, index, strict=True)
        log.info("FAISS index of %r patched: +%d -%d chunks (%d in all)", collection, len(add_ids), len(removed),
                 index.live_size)
        return index

    def _rebuild_dense(self, collection: str, generation: int, strict: bool = True) -> VectorIndex:
        """Build from the docstore and save. `strict=False` (a search that found the file unusable): a save that
        fails (disk full, read-only) is logged and the index served from memory; the stale sidecar makes the
        next open rebuild again."""
        ids, vectors = self.docstore.vectors(collection, self.embedder.dim)
        index = VectorIndex.build(ids, vectors, self.embedder.dim, self.settings)
        self._save_dense(collection, generation, index, strict)
        return index

    def _save_dense(self, collection: str, generation: int, index: VectorIndex, strict: bool) -> None:
        """Save the FAISS file and its sidecar (generation, count, SHA-256, and `next_id`: one above the largest
        chunk id held, under which every chunk id the docstore will ever add again is not: ids only grow)."""
        if self.readonly or not os.access(self.dir, os.W_OK):
            return
        faiss_path, meta_path = self._paths(collection)
        ids = index.all_ids()
        try:
            index.save(faiss_path)
            _check_complete(faiss_path, index)
            meta = {"generation": generation, "count": index.size, "type": index.kind,
                    "embedder_id": self.embedder.id, "sha256": sha256_file(faiss_path),
                    "next_id": int(ids.max()) + 1 if len(ids) else 0, "deleted": index.deleted.tolist()}
            _atomic_write(meta_path, json.dumps(meta))
        except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
            for tmp in faiss_path.parent.glob(f".*.{os.getpid()}.tmp"):
                tmp.unlink(missing_ok=True)
            if strict:
                raise
            log.warning("could not save the rebuilt FAISS file for %r (%s); serving it from memory", collection, exc)


def _check_complete(path: Path, index: VectorIndex) -> None:
    """OSError unless `path` holds the whole serialized index. faiss only prints a failed fclose ("close error: No
    space left on device"), so a small index saved onto a full disk left an empty file that looked saved."""
    import faiss

    expected = 0

    def count(chunk: bytes) -> None:
        nonlocal expected
        expected += len(chunk)

    faiss.write_index(index.index, faiss.PyCallbackIOWriter(count))  # serializes again without keeping the bytes
    written = path.stat().st_size
    if written != expected:
        raise OSError(errno.EIO, f"FAISS file incomplete: {written} of {expected} bytes written (disk full?)", str(path))


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
