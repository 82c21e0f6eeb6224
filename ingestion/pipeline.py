"""The ingest job: files → checks → parse (sandboxed) → chunk → embed → docstore → FAISS.

Read top to bottom: setup (settings, embedder, index, run directory) → per file (skip if
unchanged by content hash; otherwise parse, chunk, embed and commit it in one transaction)
→ prune → rebuild the collection's FAISS file → save the report beside the resolved config.
A bad file is recorded in the report and skipped; it never stops the batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from rich.progress import Progress

from assistant.settings import Settings
from ingestion.chunking import Chunker
from ingestion.embedder import Embedder
from ingestion.file_checks import check_file
from ingestion.index_store import IndexStore, check_collection_name
from ingestion.parser_pool import ParserPool
from ingestion.parsing import ParseError
from ingestion.report import FileResult, IngestReport


def discover(paths: Sequence[str | Path], extensions: Iterable[str]) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for every file under `paths`, sorted, hidden files skipped."""
    found: dict[Path, bool] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                parts = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in parts):
                    found.setdefault(child.resolve(), False)
        else:
            found[path.resolve() if path.exists() else path.absolute()] = True
    return sorted(found.items())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def document_title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip()


class IngestJob:
    def __init__(self, settings: Settings, embedder: Embedder, store: IndexStore):
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.chunker = Chunker(settings.chunking, embedder)

    def run(
        self,
        paths: Sequence[str | Path],
        collection: str | None = None,
        prune: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        collection = check_collection_name(collection or self.settings.default_collection)
        started = time.monotonic()
        report = IngestReport(collection)
        report.run_dir = str(self._start_run_dir())
        files = discover(paths, self.settings.ingest.extensions)
        task = progress.add_task("ingest", total=len(files)) if progress else None
        with self.store.writer_lock(), ParserPool(
            self.settings.ingest.parse_timeout_s, self.settings.ingest.parse_memory_mb
        ) as parser:
            for path, explicit in files:
                if progress is not None:
                    progress.update(task, description=f"[cyan]{path.name[:40]}")
                report.add(self._ingest_file(path, explicit, collection, parser))
                if progress is not None:
                    progress.advance(task)
            if prune:
                self._prune(paths, collection, {str(p) for p, _ in files}, report)
            if report.changed:
                if progress is not None:
                    progress.update(task, description="[cyan]building vector index")
                self.store.refresh(collection)
            else:
                # A run killed after its docstore commit but before the FAISS save left the file
                # stale; loading it here rebuilds and saves it, so the next reader finds it current.
                self.store.dense(collection)
            self.store.remove_stale_temp_files()
            self.store.write_manifest(self.settings.chunking.model_dump())
        report.seconds = time.monotonic() - started
        self._save_report(report)
        return report

    def _ingest_file(self, path: Path, explicit: bool, collection: str, parser: ParserPool) -> FileResult:
        started = time.monotonic()
        source = str(path)
        try:
            if not path.is_file():
                raise ParseError("file not found" if not path.exists() else "not a regular file")
            if path.suffix.lower() not in self.settings.ingest.extensions and not explicit:
                return FileResult(source, "skipped", f"unsupported file type {path.suffix or '(none)'!r}")
            check_file(path, self.settings.ingest)
            sha256 = file_sha256(path)
            signature = self.chunker.signature()
            existing = self.store.docstore.get_document(collection, source)
            if existing and existing.sha256 == sha256 and existing.chunking == signature:
                return FileResult(source, "unchanged", chunks=existing.chunk_count, pages=existing.pages)
            parsed = parser.parse(source)
            chunks = self.chunker.chunk(parsed["elements"], document_title(path))
            if not chunks:
                raise ParseError("no text left after chunking")
            vectors = self.embedder.embed([c.embed_text for c in chunks])
            self.store.docstore.replace_document(
                collection, source, path.name, sha256, path.stat().st_size, parsed["pages"], signature, chunks, vectors
            )
            status = "updated" if existing else "added"
            return FileResult(source, status, chunks=len(chunks), pages=parsed["pages"], seconds=time.monotonic() - started)
        except ParseError as exc:
            return FileResult(source, "failed", str(exc), seconds=time.monotonic() - started)
        except OSError as exc:
            return FileResult(source, "failed", f"cannot read file: {exc.strerror or exc}", seconds=time.monotonic() - started)

    def _prune(self, roots: Sequence[str | Path], collection: str, seen: set[str], report: IngestReport) -> None:
        """Remove documents that lived under a given directory and are gone from it."""
        dirs = [str(Path(r).expanduser().resolve()) + os.sep for r in roots if Path(r).is_dir()]
        for doc in self.store.docstore.list_documents(collection):
            if doc.source in seen or not any(doc.source.startswith(d) for d in dirs):
                continue
            if not Path(doc.source).exists():
                self.store.docstore.delete_document(doc.id)
                report.add(FileResult(doc.source, "removed", "no longer in the source directory", chunks=doc.chunk_count))

    def _start_run_dir(self) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        run_dir = self.settings.runs_dir / f"ingest-{stamp}-{os.getpid()}"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(self.settings.to_yaml(), encoding="utf-8")
        return run_dir

    def _save_report(self, report: IngestReport) -> None:
        (Path(report.run_dir) / "report.json").write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")


def delete_document(store: IndexStore, document_id: int) -> bool:
    """Remove one document and its chunks, then refresh its collection's vectors (as an ingest would)."""
    with store.writer_lock():
        doc = next((d for d in store.docstore.list_documents() if d.id == document_id), None)
        if doc is None or not store.docstore.delete_document(document_id):
            return False
        store.refresh(doc.collection)
        return True
