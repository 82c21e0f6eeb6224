"""Cheap checks on a file before any parser touches it (run in the ingesting process).

They turn the common bad inputs into clear messages without spending a parser run:
wrong type, empty, too large, not UTF-8, or a zip container (DOCX) that would inflate
into a decompression bomb or holds parts named to escape an extraction directory. Python's
zipfile never reads more than a member's declared size (a larger stream fails its CRC check),
so the declared sizes are an honest upper bound of what the parser can inflate.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from assistant.settings import IngestSettings
from ingestion.parsing import ParseError

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_MAX_ZIP_MEMBERS = 10_000


def check_file(path: Path, settings: IngestSettings) -> None:
    """Raise ParseError with a user-facing reason if `path` must not be parsed."""
    suffix = path.suffix.lower()
    if suffix not in settings.extensions:
        raise ParseError(f"unsupported file type {suffix or '(no extension)'!r}; supported: {', '.join(settings.extensions)}")
    size = path.stat().st_size
    if size == 0:
        raise ParseError("empty file")
    limit = settings.max_file_mb * 1024 * 1024
    if size > limit:
        raise ParseError(f"file is {size / 2**20:.1f} MiB, over the {settings.max_file_mb:g} MiB limit (ingest.max_file_mb)")
    with path.open("rb") as handle:
        head = handle.read(8)
    if suffix == ".pdf" and not head.startswith(_PDF_MAGIC):
        raise ParseError("not a PDF (missing %PDF- header): corrupt or mislabelled file")
    if suffix == ".docx":
        if not head.startswith(_ZIP_MAGIC):
            raise ParseError("not a DOCX (not a zip container): corrupt or mislabelled file")
        _check_zip(path, settings)
    if suffix in {".txt", ".md", ".markdown", ".html", ".htm"}:
        _check_text(path)


def _check_zip(path: Path, settings: IngestSettings) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(f"corrupt DOCX: {exc}") from exc
    if len(members) > _MAX_ZIP_MEMBERS:
        raise ParseError(f"DOCX holds {len(members)} parts, over {_MAX_ZIP_MEMBERS}: refused as a likely zip bomb")
    unsafe = next((m.filename for m in members if _unsafe_member(m.filename)), None)
    if unsafe is not None:
        # No part of a DOCX lives outside the package root; such a name only makes sense as an attack on
        # whatever extracts the archive to disk (zip slip), so the whole file is refused.
        raise ParseError(f"DOCX holds an unsafe part name {unsafe[:80]!r} (absolute or with '..'): refused")
    names = {m.filename for m in members}
    for required in ("[Content_Types].xml", "word/document.xml"):
        if required not in names:
            raise ParseError(f"corrupt DOCX: no {required} part")
    total = sum(m.file_size for m in members)
    if total > settings.max_unpacked_mb * 1024 * 1024:
        raise ParseError(
            f"DOCX inflates to {total / 2**20:.0f} MiB, over the {settings.max_unpacked_mb:g} MiB limit "
            "(ingest.max_unpacked_mb): refused as a decompression bomb"
        )
    for member in members:
        # Small parts compress extremely well (runs of spaces); only a large one can hurt.
        if member.file_size > 1024 * 1024 and member.file_size > settings.max_compression_ratio * max(member.compress_size, 1):
            raise ParseError(
                f"DOCX part {member.filename!r} is compressed {member.file_size / max(member.compress_size, 1):.0f}:1 "
                "(ingest.max_compression_ratio): refused as a decompression bomb"
            )


def _unsafe_member(name: str) -> bool:
    """An archive member name that is absolute, climbs with '..', or uses Windows separators or drives."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or "\\" in name or ".." in parts or (len(name) > 1 and name[1] == ":")


def _check_text(path: Path) -> None:
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 with a byte-order mark: unstructured decodes it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(
            f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8"
        ) from exc
    if b"\x00" in data[:8192]:
        raise ParseError("binary data in a text file")
