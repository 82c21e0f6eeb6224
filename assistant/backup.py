"""A home directory in one verifiable archive: `ragtune backup` and `ragtune restore`.

Backup works while a server or an ingest is running. Each SQLite database (the docstore, the server's
database) is copied with SQLite's online backup API, a consistent snapshot even mid-transaction; JSONL
logs are cut at their last complete line; FAISS files are kept only if they match the docstore snapshot's
generation and their recorded SHA-256 (otherwise they are left out: the index rebuilds them from the
docstore at first load). Everything is staged in a temporary directory beside the archive, hashed into
`MANIFEST.json` (the first member), and the archive is renamed into place only once complete.
The model cache (`generator.cache_dir`, default `<home>/models`) is never included: it is rebuilt from
the model package. Half-written files (`.tmp`), locks, SQLite's -wal/-shm files and unfinished training
runs (`adapters/NAME/.staging-*`) are left out too.

Restore checks every member before writing anything (regular files and directories only, relative
paths under `home/`, listed in the manifest), extracts into a staging directory beside the target,
verifies each file's SHA-256 and size and each database's integrity, and only then swaps the staging
directory in. A failed restore leaves the target as it was. A target holding anything but the model
cache is refused unless `force`. Stop the server before restoring: it keeps its open files.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from assistant import integrity

FORMAT = "ragtune-backup"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
PREFIX = "home"
_SQLITE_MAGIC = b"SQLite format 3\x00"
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

    def to_dict(self) -> dict:
        return vars(self)


# --- backup -------------------------------------------------------------------------------------------
def backup(home: Path, out: Path, excluded: list[Path]) -> BackupReport:
    """Write `home` (minus `excluded`, e.g. the model cache) to the tar.gz `out`."""
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
        files = integrity.record_tree(staging, skip=())
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "created_at": time.time(), "source": str(home),
                    "files": files, "left_out": report.left_out}
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


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC


def _copy_one(path: Path, dest: Path) -> None:
    if _is_sqlite(path):
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


# --- restore ------------------------------------------------------------------------------------------
def restore(archive: Path, home: Path, force: bool = False, keep: tuple[str, ...] = ("models",)) -> dict:
    """Restore `archive` into `home`; entries named in `keep` (the model cache) survive a forced restore."""
    home = home.resolve()
    if not archive.is_file():
        raise BackupError(f"no archive at {archive}")
    present = sorted(p.name for p in home.iterdir() if p.name not in keep) if home.is_dir() else []
    if present and not force:
        raise BackupError(f"{home} is not empty ({', '.join(present[:5])}); restore into an empty or new home, "
                          "or pass --force to replace its contents (the model cache is kept)")
    _refuse_if_ingesting(home)
    try:
        tar = tarfile.open(archive, "r:gz")
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveRejected(f"{archive} is not a gzip tar archive ({exc})") from None
    with tar:
        try:
            manifest, members = _checked_members(tar)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise ArchiveRejected(f"{archive} is damaged ({exc})") from None
        need = sum(f["size"] for f in manifest["files"].values())
        home.parent.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(home.parent).free < need:
            raise BackupError(f"the archive holds {need} bytes, more than the free space beside {home}")
        staging = home.with_name(f".{home.name}.restore-{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            for member in members:
                _extract(tar, member, staging, manifest["files"][member.name])
            _check_databases(staging)
            _swap(staging, home, keep)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveRejected(f"{archive} is damaged ({exc})") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return {"home": str(home), "files": len(members), "bytes": need, "created_at": manifest.get("created_at"),
            "source": manifest.get("source"), "left_out_at_backup": manifest.get("left_out", [])}


def _checked_members(tar: tarfile.TarFile) -> tuple[dict, list[tarfile.TarInfo]]:
    """The manifest and the file members, after refusing anything we would not write."""
    members = tar.getmembers()
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ArchiveRejected("the archive names a member twice")
    files = []
    for member in members:
        path = PurePosixPath(member.name)
        if member.name == MANIFEST:
            continue
        if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != PREFIX \
                or "\\" in member.name or "\x00" in member.name or member.name != path.as_posix():
            raise ArchiveRejected(f"refusing archive member {member.name!r}: not a plain relative path under {PREFIX}/")
        if not (member.isfile() or member.isdir()):
            raise ArchiveRejected(f"refusing archive member {member.name!r}: only files and directories are restored")
        if member.isfile():
            files.append(member)
    if MANIFEST not in names:
        raise ArchiveRejected(f"the archive has no {MANIFEST}: not a ragtune backup")
    try:
        manifest = json.load(tar.extractfile(MANIFEST))
    except ValueError as exc:
        raise ArchiveRejected(f"{MANIFEST} is unreadable ({exc})") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise ArchiveRejected(f"{MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise ArchiveRejected(f"backup format {manifest['version']} is newer than this ragtune reads ({FORMAT_VERSION})")
    listed, found = set(manifest["files"]), {m.name for m in files}
    if listed != found:
        odd = sorted(listed ^ found)
        raise ArchiveRejected(f"the archive and its manifest disagree on {len(odd)} file(s): {', '.join(odd[:5])}")
    for member in files:
        if member.size != manifest["files"][member.name]["size"]:
            raise ArchiveRejected(f"{member.name}: {member.size} bytes in the archive, the manifest says "
                                  f"{manifest['files'][member.name]['size']}")
    return manifest, files


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, staging: Path, expected: dict) -> None:
    dest = staging / PurePosixPath(member.name).relative_to(PREFIX)
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    with open(dest, "wb") as handle:
        shutil.copyfileobj(source, handle, 8 << 20)
    actual = integrity.sha256_file(dest)
    if actual != expected["sha256"]:
        raise ArchiveRejected(f"{member.name} does not match the SHA-256 in the manifest: the archive is corrupt")
    os.utime(dest, (member.mtime, member.mtime))


def _check_databases(staging: Path) -> None:
    for path in staging.rglob("*"):
        if path.is_file() and _is_sqlite(path):
            db = sqlite3.connect(path)
            try:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                verdict = str(exc)
            finally:
                db.close()
            if verdict != "ok":
                raise ArchiveRejected(f"{path.relative_to(staging)}: the database fails its integrity check ({verdict})")


def _refuse_if_ingesting(home: Path) -> None:
    lock = home / "index" / ".writer.lock"
    if not lock.is_file():
        return
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"an ingest is writing to {home}/index; restore when it has finished") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def _swap(staging: Path, home: Path, keep: tuple[str, ...]) -> None:
    """Replace `home` by `staging` with renames: the old home is removed only once the new one is in place."""
    if not home.exists():
        os.rename(staging, home)
        return
    aside = home.with_name(f".{home.name}.before-restore-{os.getpid()}")
    try:
        os.rename(home, aside)
    except OSError as exc:
        raise BackupError(f"cannot move {home} aside to swap in the restored copy ({exc}); restore into a new "
                          "home directory instead") from None
    try:
        os.rename(staging, home)
    except OSError:
        os.rename(aside, home)
        raise
    for name in keep:  # the model cache stays where the settings look for it
        if (aside / name).exists() and not (home / name).exists():
            os.rename(aside / name, home / name)
    shutil.rmtree(aside, ignore_errors=True)
