"""Hostile and broken inputs: every bad file fails alone, with a reason a person can act on.

All fixtures are generated here (no binary files in the repository). One batch mixes good
and bad files and is ingested once; the tests below read its report, the index it left
and the directory it ran in. The parser's time and memory limits get their own runs,
because those limits apply to every file of a batch.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import io  # noqa: E402
import json  # noqa: E402
import zipfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from assistant import assembly  # noqa: E402
from assistant.cli import app  # noqa: E402
from assistant.settings import Settings, load_settings  # noqa: E402
from ingestion.report import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, IngestReport  # noqa: E402

# --- generators of good and hostile files ------------------------------------------------

GOOD_MD = (
    "# Cafeteria\n\n## Opening hours\n\nThe cafeteria opens at 07:30 and serves breakfast until 10:00. "
    "Lunch is served from 11:45 to 14:00 on the ground floor.\n"
)
GOOD_TXT = (
    "Bicycle parking\n\nSecure bicycle parking is in the basement garage, level minus two. "
    "Register your bicycle with facilities to get a badge for the cage.\n"
)
PDF_TEXT = [
    "Turbine maintenance manual",
    "",
    "The turbine inspection interval is 400 operating hours.",
    "Replace the oil filter at every second inspection.",
    "Log each inspection in the maintenance book.",
]

DOCUMENT_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>Quarterly numbers</w:t></w:r></w:p></w:body></w:document>"
)


def text_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with real (extractable) text, placed in the body of the page."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    text = pdf.beginText(72, 600)  # mid-page: text at the very top is classified as a header
    for line in lines:
        text.textLine(line)
    pdf.drawText(text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypted_pdf(data: bytes, user_password: str, owner_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password=owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf() -> bytes:
    """A valid PDF header followed by garbage: passes the magic check, fails in the parser."""
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes((i * 37 + 11) % 256 for i in range(4096)) + b"\n%%EOF\n"


def docx_bomb(path: Path, inflated_bytes: int) -> Path:
    """A zip with word/document.xml and a padding part of zeros that deflates ~1000:1."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("word/document.xml", DOCUMENT_XML)
        archive.writestr("word/media/padding.bin", b"\0" * inflated_bytes)
    return path


def large_text(paragraphs: int) -> str:
    body = "The quick brown fox jumps over the lazy dog near the river bank. " * 5
    return "\n\n".join(f"Paragraph {i}. {body}" for i in range(paragraphs))


def make_settings(home: Path, **ingest) -> Settings:
    """The `test` profile (fake hash embedder) with its own home; the shell's RAGTUNE_* are ignored."""
    overrides = {"home": str(home)}
    if ingest:
        overrides["ingest"] = ingest
    return load_settings(profile="test", overrides=overrides, environ={})




def listing(root: Path, exclude: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` except `exclude`, with size and mtime: what a run may not touch."""
    seen = {}
    for path in sorted(root.rglob("*")):
        if path == exclude or exclude in path.parents:
            continue
        stat = path.lstat()
        seen[str(path.relative_to(root))] = (stat.st_size if path.is_file() else -1, stat.st_mtime_ns)
    return seen


def by_name(report: IngestReport) -> dict[str, object]:
    return {Path(f.path).name: f for f in report.files}


# --- one batch: good files beside every kind of bad file ----------------------------------

MAX_FILE_MB = 0.25
MAX_UNPACKED_MB = 4


@dataclass
class Batch:
    settings: Settings
    root: Path
    report: IngestReport
    before: dict
    after: dict


def build_inbox(inbox: Path) -> None:
    inbox.mkdir(parents=True)
    (inbox / "good.md").write_text(GOOD_MD, encoding="utf-8")
    (inbox / "good.txt").write_text(GOOD_TXT, encoding="utf-8")
    (inbox / "corrupt.pdf").write_bytes(corrupt_pdf())
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "locked.pdf").write_bytes(encrypted_pdf(text_pdf(PDF_TEXT), "secret", "secret"))
    (inbox / "owner_locked.pdf").write_bytes(encrypted_pdf(text_pdf(PDF_TEXT), "", "x"))
    (inbox / "huge.txt").write_text(large_text(1200), encoding="utf-8")  # ~400 KiB > 0.25 MiB
    (inbox / "latin1.txt").write_bytes("Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, \u00e0 la carte.\n".encode("latin-1"))
    docx_bomb(inbox / "bomb_size.docx", 8 * 2**20)  # 8 MiB inflated > 4 MiB limit
    docx_bomb(inbox / "bomb_ratio.docx", 2 * 2**20)  # 2 MiB: under the size limit, ~1000:1
    (inbox / "notzip.docx").write_bytes(b"This is plain text pretending to be a Word document.\n" * 20)
    whole = docx_bomb(inbox / "truncated.docx", 1000).read_bytes()
    (inbox / "truncated.docx").write_bytes(whole[: len(whole) // 2])  # zip header, no central directory
    (inbox / "ignored.xyz").write_text("an unknown type found while walking a directory\n", encoding="utf-8")


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    root = tmp_path_factory.mktemp("bad_inputs")
    home = root / "home"
    build_inbox(root / "inbox")
    extra = root / "extra"
    extra.mkdir()
    (extra / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    settings = make_settings(home, max_file_mb=MAX_FILE_MB, max_unpacked_mb=MAX_UNPACKED_MB)
    before = listing(root, home)
    cwd = os.getcwd()
    os.chdir(root)  # a stray relative path (./.ragtune) would land here and be caught
    try:
        job = assembly.ingest_job(settings)
        report = job.run([root / "inbox", extra / "table.csv", root / "missing.md"])
        job.store.close()
        hits = assembly.retriever(settings).search("when does the cafeteria serve lunch", k=3)
        assert hits, "search returned nothing"
    finally:
        os.chdir(cwd)
    return Batch(settings, root, report, before, listing(root, home))


# name -> words the failure reason must contain (all of them, case-insensitive)
EXPECTED_FAILURES = {
    "corrupt.pdf": ["corrupt pdf"],
    "empty.txt": ["empty file"],
    "locked.pdf": ["password-protected", "remove the password"],
    "huge.txt": ["mib", "limit", "max_file_mb"],
    "latin1.txt": ["utf-8", "0xe9", "re-save"],
    "bomb_size.docx": ["decompression bomb", "max_unpacked_mb", "8 mib"],
    "bomb_ratio.docx": ["decompression bomb", "max_compression_ratio", "padding.bin"],
    "notzip.docx": ["not a docx", "zip"],
    "truncated.docx": ["corrupt docx"],
    "table.csv": ["unsupported file type", ".csv"],
    "missing.md": ["file not found"],
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_bad_file_fails_with_a_specific_reason(batch, name):
    result = by_name(batch.report)[name]
    assert result.status == "failed", result
    reason = result.reason.lower()
    for word in EXPECTED_FAILURES[name]:
        assert word in reason, f"{name}: {word!r} not in {result.reason!r}"
    assert "traceback" not in reason and len(result.reason) < 400
    assert result.chunks == 0


def test_good_files_and_owner_password_pdf_are_added(batch):
    results = by_name(batch.report)
    for name in ("good.md", "good.txt", "owner_locked.pdf"):
        assert results[name].status == "added", results[name]
        assert results[name].chunks >= 1
    assert results["owner_locked.pdf"].pages == 1
    assert results["ignored.xyz"].status == "skipped"  # found in a directory, not named: not an error
    assert "unsupported" in results["ignored.xyz"].reason
    counts = batch.report.counts()
    assert counts["added"] == 3 and counts["failed"] == len(EXPECTED_FAILURES) and counts["skipped"] == 1
    assert batch.report.exit_code() == EXIT_PARTIAL == 3


def test_only_good_files_reach_the_index_and_search_finds_them(batch):
    store = assembly.index_store(batch.settings, readonly=True)
    try:
        names = {d.name for d in store.docstore.list_documents("default")}
    finally:
        store.close()
    assert names == {"good.md", "good.txt", "owner_locked.pdf"}
    retriever = assembly.retriever(batch.settings)
    assert retriever.search("when does the cafeteria serve lunch", k=1)[0].document == "good.md"
    assert retriever.search("secure bicycle parking basement cage", k=1)[0].document == "good.txt"
    hit = retriever.search("turbine inspection interval operating hours", k=1)[0]
    assert hit.document == "owner_locked.pdf" and hit.page == 1 and "400 operating hours" in hit.text


def test_report_is_saved_and_nothing_is_written_outside_home(batch):
    saved = json.loads((Path(batch.report.run_dir) / "report.json").read_text(encoding="utf-8"))
    assert saved["exit_code"] == 3 and saved["counts"] == batch.report.counts()
    assert Path(batch.report.run_dir).is_relative_to(batch.settings.home)
    assert batch.after == batch.before, "ingest wrote, changed or removed files outside its home"


# --- the parser's time and memory limits ------------------------------------------------


def test_parser_time_limit_stops_one_file_and_the_next_file_is_ingested(tmp_path):
    """A parse that runs past ingest.parse_timeout_s is killed; a fresh worker parses the next file.

    The limit cannot be ~0.01 s: a fresh worker's first parse of even a tiny file takes about
    0.3 s (lazy initialisation inside unstructured), so the limit is 3 s and the "hanging"
    file is a valid text file large enough to need ~10x that.
    """
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a_slow.txt").write_text(large_text(40_000), encoding="utf-8")  # ~13 MiB of paragraphs
    (inbox / "b_next.md").write_text(GOOD_MD, encoding="utf-8")
    settings = make_settings(tmp_path / "home", parse_timeout_s=3.0)
    report = assembly.ingest_job(settings).run([inbox])
    results = by_name(report)
    slow = results["a_slow.txt"]
    assert slow.status == "failed"
    assert "longer than 3 s" in slow.reason and "stopped" in slow.reason, slow.reason
    assert slow.seconds < 60, "the time limit did not stop the parse"
    assert results["b_next.md"].status == "added", results["b_next.md"]
    assert report.exit_code() == EXIT_PARTIAL
    hits = assembly.retriever(settings).search("cafeteria lunch", k=1)
    assert hits[0].document == "b_next.md"


def test_parser_memory_limit_gives_a_clear_error(tmp_path):
    """256 MiB is the settings minimum and the worker alone is above it after its imports."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "big.txt").write_text(large_text(3000), encoding="utf-8")  # ~2 s to parse
    settings = make_settings(tmp_path / "home", parse_memory_mb=256)
    report = assembly.ingest_job(settings).run([inbox])
    [result] = report.files
    assert result.status == "failed"
    assert "more than 256 MiB of memory" in result.reason and "stopped" in result.reason, result.reason
    assert report.exit_code() == EXIT_FAILED


# --- the command line: exit codes and the JSON report -------------------------------------


def cli(home: Path, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), "--profile", "test", *args])


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("RAGTUNE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


FILE_KEYS = {"path", "status", "reason", "chunks", "pages", "seconds"}
REPORT_KEYS = {"collection", "counts", "chunks", "pages", "seconds", "exit_code", "run_dir", "files"}


def test_cli_exit_code_3_on_partial_with_json_report(tmp_path, clean_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD_MD, encoding="utf-8")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "notzip.docx").write_bytes(b"not a zip at all\n")
    home = tmp_path / "home"
    before = listing(tmp_path, home)
    result = cli(home, "ingest", str(docs), "--json")
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout)  # stdout holds only the JSON; messages go to stderr
    assert set(report) == REPORT_KEYS
    assert set(report["counts"]) == {"added", "updated", "unchanged", "removed", "skipped", "failed"}
    assert report["exit_code"] == 3 and report["collection"] == "default"
    assert report["counts"]["added"] == 1 and report["counts"]["failed"] == 2
    assert all(set(f) == FILE_KEYS for f in report["files"])
    reasons = {Path(f["path"]).name: f["reason"] for f in report["files"] if f["status"] == "failed"}
    assert "empty file" in reasons["empty.txt"] and "not a DOCX" in reasons["notzip.docx"]
    assert "empty file" in result.stderr  # the human-readable list on stderr names each failure
    assert Path(report["run_dir"]).is_relative_to(home)
    assert listing(tmp_path, home) == before


def test_cli_exit_code_4_when_every_file_fails(tmp_path, clean_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.md").write_bytes(b"")
    (docs / "latin1.txt").write_bytes("na\u00efve caf\u00e9\n".encode("latin-1"))
    (docs / "corrupt.docx").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    result = cli(tmp_path / "home", "ingest", str(docs), "--json")
    assert result.exit_code == 4, result.output
    report = json.loads(result.stdout)
    assert report["exit_code"] == 4 and report["counts"]["failed"] == 3 and report["chunks"] == 0


def test_cli_exit_code_0_when_all_files_are_good(tmp_path, clean_env):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD_MD, encoding="utf-8")
    (docs / "good.txt").write_text(GOOD_TXT, encoding="utf-8")
    home = tmp_path / "home"
    result = cli(home, "ingest", str(docs), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["exit_code"] == EXIT_OK and report["counts"]["added"] == 2 and report["chunks"] >= 2
    search = cli(home, "search", "bicycle parking cage", "--json", "-k", "1")
    assert search.exit_code == 0 and json.loads(search.stdout)[0]["document"] == "good.txt"
    again = cli(home, "ingest", str(docs), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["counts"]["unchanged"] == 2


# --- found while writing these tests ----------------------------------------------------------


def test_text_file_of_short_lines_is_not_lost(tmp_path):
    """A plain-text file of short lines must be ingested, not dropped.

    Fails today: partition_text labels each short line a Title (no part-of-speech model offline),
    and chunking's _sections() turns a Title into a heading only, so a file without longer body
    text ends as "no text left after chunking" and its content is unsearchable.
    """
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "wifi.txt").write_text("Guest Wi-Fi password: kestrel-guest-2024\n", encoding="utf-8")
    (inbox / "notes.txt").write_text(
        "Heat pump service every spring.\n\nBoiler check every autumn.\n\nFire drill in March.\n", encoding="utf-8"
    )
    settings = make_settings(tmp_path / "home")
    report = assembly.ingest_job(settings).run([inbox])
    assert {Path(f.path).name: (f.status, f.reason) for f in report.files} == {
        "notes.txt": ("added", ""),
        "wifi.txt": ("added", ""),
    }
    assert assembly.retriever(settings).search("boiler check autumn", k=1, mode="bm25")[0].document == "notes.txt"
