"""A valid PDF that trips one of pypdf's safety limits is ingested, not refused as corrupt.

Public 10-Q filings carry arrays longer than pypdf's 100,000-element cap; pdfminer reads them in full.
The pre-check must leave such a file to the parser (which runs under its own time and memory limits),
while encrypted and broken PDFs are still refused with their own reasons.
"""

from __future__ import annotations

import pytest

from assistant import assembly
from assistant.settings import load_settings
from ingestion.parsing import ParseError, _check_pdf_encryption
from tests import hostile_corpus as corpus

FACT = "Net revenue rose 12 percent in the quarter ended March 31."


def big_array_pdf(elements: int = 150_000) -> bytes:
    """One page of text whose page dictionary holds application data (/PieceInfo) with a long number array."""
    private = b"[" + b"0 " * elements + b"]"
    return corpus.text_pdf([FACT], page_extra=b"/PieceInfo << /Filing << /Private %s >> >>" % private)


def test_precheck_accepts_a_valid_pdf_over_pypdfs_array_limit(tmp_path):
    path = tmp_path / "filing.pdf"
    path.write_bytes(big_array_pdf())
    _check_pdf_encryption(str(path))  # raised "corrupt PDF: LimitReachedError" before


def test_precheck_still_refuses_a_broken_pdf(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"garbage " * 100)
    with pytest.raises(ParseError, match="corrupt PDF|no pages"):
        _check_pdf_encryption(str(path))


def test_ingest_adds_the_pdf_and_search_finds_its_text(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "filing.pdf").write_bytes(big_array_pdf())
    settings = load_settings(profile="test", overrides={"home": str(tmp_path / "home")}, environ={})
    job = assembly.ingest_job(settings)
    report = job.run([inbox])
    job.store.close()
    (result,) = report.files
    assert result.status == "added", result.reason
    assert result.pages == 1
    hit = assembly.retriever(settings).search("net revenue quarter", k=1)[0]
    assert hit.document == "filing.pdf" and hit.page == 1 and "12 percent" in hit.text
