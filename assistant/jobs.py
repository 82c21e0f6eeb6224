"""Background ingestion of uploaded documents: save safely, queue, ingest on one worker thread.

Uploaded file names never become paths: only a sanitised base name is kept, inside a directory
named after the job id. One worker thread runs the ordinary ingest pipeline (the same code as
`ragtune ingest`, with its parser sandbox and per-file errors), so uploads never block the event
loop and two ingests never race for the index writer lock.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import queue
import re
import shutil
import threading
import time
import unicodedata
import uuid
from pathlib import Path
from typing import Callable, Sequence

from assistant.auth import Principal, allowed_collections, authorize
from assistant.db import Database, JobRecord
from assistant.db.database import StorageError, storage_error
from assistant.errors import ApiError, not_found
from assistant.settings import Settings
from ingestion.index_store import IndexStoreError, check_collection_name
from ingestion.pipeline import IngestJob

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_MAX_NAME_CHARS = 120
_STALE_STAGING_S = 3600  # an upload staging folder older than this (seconds) was left by a killed server


def safe_filename(name: str, extensions: Sequence[str]) -> str:
    """A base name safe to create in our own directory, or ApiError 400/415."""
    if not name or "\x00" in name:
        raise ApiError("invalid_filename", "an uploaded file has no usable name", 400)
    base = unicodedata.normalize("NFKC", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base).lstrip(".-")
    if not base or base in {".", ".."} or len(base) > _MAX_NAME_CHARS:
        raise ApiError("invalid_filename", f"unusable file name {name[:80]!r}", 400)
    suffix = Path(base).suffix.lower()
    if suffix not in extensions:
        raise ApiError("unsupported_media_type", f"{base}: {suffix or 'no extension'} is not ingested "
                       f"(allowed: {', '.join(extensions)})", 415)
    return base


def storage_failure(exc: OSError) -> ApiError:
    """503 with a reason people can act on, for an upload that could not be written to disk."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ApiError("storage_full", "the disk is full: the upload was not saved; free space and send it again", 503)
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ApiError("storage_read_only", "the server's home directory is not writable: the upload was not saved",
                        503)
    return ApiError("storage_error", f"the upload could not be saved ({exc.strerror or exc})", 503)


def failure_reason(exc: Exception) -> str:
    """What a failed job says: the storage problem in words when there is one, else the exception."""
    mapped = exc if isinstance(exc, StorageError) else storage_error(exc)
    if mapped is not None:
        return mapped.message
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full: {exc.filename or 'a file'} could not be written; free space and upload again"
    return f"{type(exc).__name__}: {exc}"


class JobRunner:
    def __init__(self, settings: Settings, db: Database, make_job: Callable[[], IngestJob], worker: str = "local"):
        self.settings = settings
        self.db = db
        self.make_job = make_job  # a fresh pipeline per job: it opens the index for writing
        # Jobs are claimed under this worker's lease, so with several API workers exactly one runs each job; with
        # shared state on, the worker also polls for jobs queued through other workers and for lapsed leases.
        self.worker = worker
        self.lease_s = settings.server.job_lease_s
        self.poll_s = settings.server.shared_poll_s if settings.server.shared else None
        self.uploads = settings.home / "uploads"  # staging, one folder per job
        self.library = settings.home / "documents"  # <collection>/<name>: re-uploading a name replaces it
        self._queue: queue.Queue[str | None] = queue.Queue()
        # Outcomes the database could not take (full or locked disk): job id -> (status, error). Jobs answer with
        # them until a later save succeeds; a restart fails the job as interrupted.
        self._unsaved: dict[str, tuple[str, str | None]] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.db.jobs.fail_running()
        for stale in self.uploads.glob(".incoming-*"):
            if time.time() - stale.stat().st_mtime > _STALE_STAGING_S:
                shutil.rmtree(stale, ignore_errors=True)
        for job in self.db.jobs.queued():
            self._queue.put(job.id)
        self._thread = threading.Thread(target=self._work, name="ingest-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def submit(self, principal: Principal, collection: str | None, files: list[tuple[str, bytes]]) -> JobRecord:
        authorize(principal, "ingest")
        collection = collection or self.settings.default_collection
        try:
            check_collection_name(collection)
        except IndexStoreError as exc:
            raise ApiError("invalid_collection", str(exc), 400) from exc
        allowed_collections(principal, [collection], [collection])  # may this key write there?
        if not files:
            raise ApiError("no_files", "send one or more files in the multipart field 'files'", 400)
        names = [safe_filename(name, self.settings.ingest.extensions) for name, _ in files]
        if len(set(names)) != len(names):
            raise ApiError("duplicate_filename", "two uploaded files have the same name", 400)
        # Files first, then the job: a job never points at a half-written file (disk full, server killed).
        staging = self._stage(names, [content for _, content in files])
        try:
            job = self.db.jobs.create(principal.key_id, collection, {"files": names})
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            staging.rename(self.uploads / job.id)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self.db.jobs.update(job.id, "failed", error=f"the upload could not be saved: {exc.strerror}")
            raise storage_failure(exc) from exc
        self._queue.put(job.id)
        return job

    def submit_retrain(self, principal: Principal, eval_limit: int | None) -> dict:
        """Queue `ragtune retrain` (assistant/retrain.py) on the job worker: it never runs beside an ingest."""
        authorize(principal, "admin")
        job = self.db.jobs.create(principal.key_id, self.settings.pipeline.collection, {"eval_limit": eval_limit},
                                  kind="retrain")
        self._queue.put(job.id)
        return job.to_dict()

    def _stage(self, names: list[str], contents: list[bytes]) -> Path:
        staging = self.uploads / f".incoming-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            for name, content in zip(names, contents):
                (staging / name).write_bytes(content)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise storage_failure(exc) from exc
        return staging

    def get(self, principal: Principal, job_id: str) -> JobRecord:
        job = self.db.jobs.get(job_id, principal.key_id, admin=principal.is_admin)
        if job is None:
            raise not_found("job", job_id)
        if job.id in self._unsaved:
            status, error = self._unsaved[job.id]
            job = dataclasses.replace(job, status=status, error=error)
        return job

    def list(self, principal: Principal, limit: int = 50) -> list[JobRecord]:
        """The key's jobs, newest first (an admin sees every key's)."""
        authorize(principal, "ingest")
        return self.db.jobs.list(principal.key_id, limit=limit, all_keys=principal.is_admin)

    def _next(self) -> str | None:
        """The next job id to try: from this worker's queue, or (shared state) from the database when idle."""
        while True:
            try:
                return self._queue.get(timeout=self.poll_s)
            except queue.Empty:
                try:
                    self.db.jobs.fail_running("interrupted: the worker running it stopped (its lease lapsed)")
                    for job in self.db.jobs.queued():
                        self._queue.put(job.id)
                except Exception:  # noqa: BLE001 - a database hiccup: poll again later
                    log.warning("polling for queued ingest jobs failed", exc_info=True)

    def _work(self) -> None:
        while (job_id := self._next()) is not None:
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - the worker outlives any one job (e.g. its status not saved: a
                # locked or full database); a job left "running" is failed at the next start
                log.exception("ingest job %s could not be run or recorded", job_id)

    def _run(self, job_id: str) -> None:
        for earlier, (status, error) in list(self._unsaved.items()):  # the disk may have room again
            try:
                self.db.jobs.update(earlier, status, error=error)
            except StorageError:
                break  # still no room: keep them
            del self._unsaved[earlier]
        try:
            job = self.db.jobs.claim(job_id, self.worker, self.lease_s)
        except StorageError as exc:  # not even started: its outcome is this error
            self._unsaved[job_id] = ("failed", exc.message)
            raise
        if job is None:  # another worker claimed it first (or it is gone)
            return
        if job.kind == "retrain":  # minutes of training: its lease is renewed like an ingest's
            renewing = threading.Event()
            threading.Thread(target=self._renew, args=(job_id, renewing), name="retrain-lease", daemon=True).start()
            try:
                self._retrain(job_id, job.inputs.get("eval_limit"))
            finally:
                renewing.set()
            return
        folder = self.uploads / job_id
        renewing = threading.Event()
        threading.Thread(target=self._renew, args=(job_id, renewing), name="ingest-lease", daemon=True).start()
        try:
            target = self.library / job.collection
            target.mkdir(parents=True, exist_ok=True)
            paths = []
            for name in job.inputs["files"]:
                (folder / name).replace(target / name)
                paths.append(target / name)
            report = self.make_job().run(paths, job.collection)
            status = "done" if report.exit_code() in (0, 3) else "failed"
            error = None if status == "done" else "no file could be ingested (see the report)"
            self.db.jobs.update(job_id, status, report=report.to_dict(), error=error)
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, the worker lives on
            log.exception("ingest job %s failed", job_id)
            reason = failure_reason(exc)
            try:
                self.db.jobs.update(job_id, "failed", error=reason)
            except StorageError:
                self._unsaved[job_id] = ("failed", reason)
                raise
        finally:
            renewing.set()
            shutil.rmtree(folder, ignore_errors=True)

    def _renew(self, job_id: str, done: threading.Event) -> None:
        """Keep the job's lease alive while it runs: every third of the lease, so two missed renewals are survived."""
        while not done.wait(self.lease_s / 3):
            try:
                self.db.jobs.renew(job_id, self.worker, self.lease_s)
            except Exception:  # noqa: BLE001 - try again next time; the lease outlasts one failure
                log.warning("renewing the lease of job %s failed", job_id, exc_info=True)

    def _retrain(self, job_id: str, eval_limit: int | None) -> None:
        from assistant.retrain import retrain

        try:
            result = retrain(self.settings, eval_limit=eval_limit)
            self.db.jobs.update(job_id, "done", report=result.to_dict())
        except Exception as exc:  # noqa: BLE001 - recorded on the job; the worker lives on
            log.exception("retrain job %s failed", job_id)
            self.db.jobs.update(job_id, "failed", error=failure_reason(exc))
