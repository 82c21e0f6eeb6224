"""A home directory in one verifiable archive: `ragtune backup`.

Backup works while a server or an ingest is running. Each SQLite database (the docstore, the server's
database) is copied with SQLite's online backup API, a consistent snapshot even mid-transaction; JSONL
logs are cut at their last complete line; FAISS files are kept only if they match the docstore snapshot's
generation and their recorded SHA-256 (otherwise they are left out: the index rebuilds them from the
docstore at first load). Everything is staged in a temporary directory beside the archive, hashed into
`MANIFEST.json` (the first member), and the archive is renamed into place only once complete.
The model cache (`generator.cache_dir`, default `<home>/models`) is never included: it is rebuilt from
the model package. Half-written files (`.tmp`), locks, SQLite's -wal/-shm files and unfinished training
runs (`adapters/NAME/.staging-*`) are left out too.

A server database that is not a file in the home (PostgreSQL, or SQLite elsewhere) is never skipped: the
caller passes its logical export (assistant/db/export.py), stored as `home/database-export.json` and loaded
back into the configured database by `ragtune restore`.

`assistant/restore.py` reads the archive back.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant import integrity

FORMAT = "ragtune-backup"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
DATABASE_EXPORT = "database-export.json"  # in the archive's home/: the server database's rows (see above)
PREFIX = "home"
SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_LOCK_NAMES = {".writer.lock", ".convert.lock"}


class BackupError(ValueError):
    """A backup or restore that cannot be done; the message says why and what to do."""


class ArchiveRejected(BackupError):
    """The archive is not a ragtune backup we can trust (bad member, hash mismatch); nothing was written."""


@dataclass
class BackupReport:
    archive: str
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    left_out: list[str] = field(default_factory=list)  # "path: why"
    database: dict = field(default_factory=dict)  # how the server database is in the archive (file or export)

    def to_dict(self) -> dict:
        return vars(self)


# --- backup -------------------------------------------------------------------------------------------
def backup(home: Path, out: Path, excluded: list[Path], database_export: dict | None = None,
           database_file: str | None = None) -> BackupReport:
    """Write `home` (minus `excluded`, e.g. the model cache) to the tar.gz `out`.

    The server database goes in as `database_file` (its path relative to the home: copied with the files) or as
    `database_export` (rows from assistant/db/export.py, for a database outside the home)."""
    started = time.monotonic()
    home, out = home.resolve(), out.resolve()
    if not home.is_dir():
        raise BackupError(f"no home directory at {home}")
    out.parent.mkdir(parents=True, exist_ok=True)
    report = BackupReport(str(out))
    staging = Path(tempfile.mkdtemp(prefix=".ragtune-backup-", dir=out.parent))
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        skip = {p.resolve() for p in excluded} | {staging, partial, out}
        _snapshot(home, staging / PREFIX, skip, report)
        _drop_stale_faiss(staging / PREFIX, report)
        database: dict = {"file": database_file} if database_file else {}
        if database_export is not None:
            if (staging / PREFIX / DATABASE_EXPORT).exists():
                raise BackupError(f"{home / DATABASE_EXPORT} exists: move it out of the home, the backup needs the name")
            (staging / PREFIX / DATABASE_EXPORT).write_text(json.dumps(database_export), encoding="utf-8")
            database = {"export": DATABASE_EXPORT, "backend": database_export.get("backend"),
                        "revision": database_export.get("revision"), "counts": database_export.get("counts")}
        files = integrity.record_tree(staging, skip=())
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "created_at": time.time(), "source": str(home),
                    "files": files, "left_out": report.left_out, "database": database}
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            raw = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(raw), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(raw))
            for rel in sorted(files):
                tar.add(staging / rel, arcname=rel, recursive=False)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, out)  # the archive appears only complete
        report.files, report.bytes = len(files), sum(f["size"] for f in files.values())
        report.database = database
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def _snapshot(source: Path, target: Path, skip: set[Path], report: BackupReport) -> None:
    for directory, dirs, files in os.walk(source):
        here = Path(directory)
        rel_dir = here.relative_to(source)
        for name in list(dirs):
            path = here / name
            if path.resolve() in skip or name.startswith(".staging-") or path.is_symlink():
                dirs.remove(name)
                if path.is_symlink() or name.startswith(".staging-"):
                    report.left_out.append(f"{(rel_dir / name).as_posix()}: " + (
                        "a symbolic link" if path.is_symlink() else "an unfinished training run"))
        (target / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            path, rel = here / name, (rel_dir / name).as_posix()
            if path.resolve() in skip or name in _LOCK_NAMES or name.endswith(".tmp"):
                continue
            if name.endswith(_SQLITE_SIDE_FILES) and (here / name.rsplit("-", 1)[0]).exists():
                continue  # the online backup of the database includes what its WAL holds
            if path.is_symlink() or not path.is_file():
                report.left_out.append(f"{rel}: not a regular file")
                continue
            try:
                _copy_one(path, target / rel_dir / name)
            except FileNotFoundError:
                report.left_out.append(f"{rel}: deleted while the backup ran")


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC


def _copy_one(path: Path, dest: Path) -> None:
    if is_sqlite(path):
        _sqlite_snapshot(path, dest)
    elif path.suffix == ".jsonl":
        data = path.read_bytes()  # an append may be in flight: keep complete lines only
        dest.write_bytes(data[: data.rfind(b"\n") + 1])
    else:
        shutil.copy2(path, dest)


def _sqlite_snapshot(path: Path, dest: Path) -> None:
    source = sqlite3.connect(path, timeout=30)  # waits up to 30 s for a writer's lock, like the server does
    copy = sqlite3.connect(dest)
    try:
        source.backup(copy)  # one step: a consistent snapshot of the committed state
        copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file, no -wal needed
    finally:
        copy.close()
        source.close()


def _drop_stale_faiss(home: Path, report: BackupReport) -> None:
    """Keep a FAISS file only if it matches the snapshot's generation and its recorded hash."""
    docstore = home / "index" / "docstore.sqlite"
    vectors = home / "index" / "vectors"
    if not vectors.is_dir():
        return
    generations = {}
    if docstore.is_file():
        db = sqlite3.connect(docstore)
        rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'generation:%'").fetchall()
        db.close()
        generations = {k.split(":", 1)[1]: int(v) for k, v in rows}
    for sidecar in sorted(vectors.glob("*.json")):
        faiss_file = sidecar.with_suffix(".faiss")
        try:
            meta = json.loads(sidecar.read_text())
            good = (faiss_file.is_file() and meta.get("generation") == generations.get(sidecar.stem)
                    and meta.get("sha256", integrity.sha256_file(faiss_file)) == integrity.sha256_file(faiss_file))
        except ValueError:
            good = False
        if not good:
            sidecar.unlink()
            faiss_file.unlink(missing_ok=True)
            report.left_out.append(f"index/vectors/{sidecar.stem}.faiss: older than the docstore snapshot "
                                   "(rebuilt from the docstore at first load)")
