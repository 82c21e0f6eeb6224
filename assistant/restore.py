"""`ragtune restore`: a home directory back from an archive written by `ragtune backup` (assistant/backup.py).

Every member is checked before anything is written (regular files and directories only, relative paths
under `home/`, each listed in the manifest with its size); the files are extracted into a staging
directory beside the target, each SHA-256 and each SQLite database's integrity is checked, and only then
is the staging directory swapped in by renames. A failed restore leaves the target as it was. A target
holding anything but the model cache is refused unless `force`. Stop the server before restoring: it
keeps its open files.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from assistant import integrity
from assistant.backup import FORMAT, FORMAT_VERSION, MANIFEST, PREFIX, ArchiveRejected, BackupError, is_sqlite


def restore(archive: Path, home: Path, force: bool = False, keep: tuple[str, ...] = ("models",),
            load_database: Callable[[Path, dict], dict] | None = None) -> dict:
    """Restore `archive` into `home`; entries named in `keep` (the model cache) survive a forced restore.

    `load_database(staging, manifest)` runs once every file is verified and before the swap: it puts the server
    database back (an export into PostgreSQL, see assistant/cli/backup.py); if it raises, nothing is swapped."""
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
            database = load_database(staging, manifest) if load_database else {}
            _swap(staging, home, keep)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ArchiveRejected(f"{archive} is damaged ({exc})") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return {"home": str(home), "files": len(members), "bytes": need, "created_at": manifest.get("created_at"),
            "source": manifest.get("source"), "left_out_at_backup": manifest.get("left_out", []), "database": database}


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
        if path.is_file() and is_sqlite(path):
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
