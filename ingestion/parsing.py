"""Turn one file into structural elements with `unstructured`, fully offline.

Runs inside the parser worker process (see `parser_pool.py`); returns plain dicts so the
result crosses the process boundary cheaply. Each element keeps what citations need:
1-based page (None for formats without pages), the section heading path and the element type.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


class ParseError(ValueError):
    """The file cannot be turned into text; the message is shown to the user as is."""


# Set before `unstructured` is imported: it calls home at import and would block offline.
OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "UNSTRUCTURED_DISABLE_NOTICE": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "SCARF_NO_ANALYTICS": "true",
}

_SKIPPED_KINDS = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "Figure"}
_HEADING_KINDS = {"Title"}


def prepare_offline() -> None:
    """Make `unstructured` work with no network.

    unstructured 0.27 downloads the spaCy model `en_core_web_sm` on first use. We swap its
    loader for a blank English pipeline with a rule-based sentencizer: no third-party model
    to trust, at the cost of part-of-speech based NarrativeText labelling (we do not use it).
    """
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import spacy
    import unstructured.nlp.tokenize as tokenize

    def _blank_english():
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp

    tokenize._load_spacy_model = _blank_english
    cached = getattr(tokenize, "_get_nlp", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()


def parse_path(path: str) -> dict[str, Any]:
    """Parse `path` (type chosen by extension) into {"elements": [...], "pages": int | None}."""
    suffix = Path(path).suffix.lower()
    raw = _partition(path, suffix)
    elements: list[dict[str, Any]] = []
    headings: list[tuple[int, str]] = []  # (depth, text) stack for the section path
    max_page = 0
    for element in raw:
        kind = type(element).__name__
        text = _clean(element.text or "")
        if kind in _SKIPPED_KINDS or not text:
            continue
        meta = element.metadata
        page = getattr(meta, "page_number", None) if suffix in {".pdf", ".docx"} else None
        if page:
            max_page = max(max_page, int(page))
        if kind in _HEADING_KINDS:
            depth = int(getattr(meta, "category_depth", None) or 0)
            while headings and headings[-1][0] >= depth:
                headings.pop()
            headings.append((depth, text))
        if kind == "Table":
            text = _table_text(getattr(meta, "text_as_html", None)) or text
        elements.append(
            {
                "text": text,
                "kind": kind,
                "page": int(page) if page else None,
                "heading": " > ".join(h for _, h in headings),
            }
        )
    if not elements:
        hint = " (a scanned, image-only PDF? OCR is not enabled)" if suffix == ".pdf" else ""
        raise ParseError(f"no extractable text{hint}")
    return {"elements": elements, "pages": max_page or None}


_PARTITIONERS = {
    ".pdf": "unstructured.partition.pdf",
    ".docx": "unstructured.partition.docx",
    ".html": "unstructured.partition.html",
    ".htm": "unstructured.partition.html",
    ".md": "unstructured.partition.md",
    ".markdown": "unstructured.partition.md",
    ".txt": "unstructured.partition.text",
}


def preload(path: str) -> None:
    """Import the partitioner `path` needs (seconds, once per worker), before its clock starts."""
    module = _PARTITIONERS.get(Path(path).suffix.lower())
    if module:
        import importlib

        importlib.import_module(module)


def _partition(path: str, suffix: str) -> list:
    if suffix == ".pdf":
        _check_pdf_encryption(path)
        from unstructured.partition.pdf import partition_pdf

        return partition_pdf(filename=path, strategy="fast", languages=["eng"], infer_table_structure=False)
    if suffix == ".docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx(filename=path, infer_table_structure=True)
    if suffix in {".html", ".htm"}:
        from unstructured.partition.html import partition_html

        return partition_html(filename=path, languages=["eng"])
    if suffix in {".md", ".markdown"}:
        from unstructured.partition.md import partition_md

        return partition_md(filename=path, languages=["eng"])
    if suffix == ".txt":
        from unstructured.partition.text import partition_text

        return partition_text(filename=path, languages=["eng"])
    raise ParseError(f"unsupported file type {suffix!r}")


def _check_pdf_encryption(path: str) -> None:
    """Refuse password-protected and page-less PDFs before pdfminer spends time on them.

    pypdf's safety limits (e.g. at most 100,000 elements in one array) bound pypdf's own work; they do not
    say the file is invalid. Real filings pass them (a 10-Q whose page dictionary carries a longer array
    reads fully in pdfminer), so a limit reached here leaves the decision to the parser, which runs in this
    same worker under its time and memory limits. Encryption is read from the trailer first, so an
    encrypted file is still refused with its own reason when the limit trips later, in the page tree.
    """
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ParseError("password-protected PDF: remove the password and ingest it again")
        if len(reader.pages) == 0:
            raise ParseError("PDF has no pages")
    except ParseError:
        raise
    except LimitReachedError:
        return
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"corrupt PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        if "crypt" in type(exc).__name__.lower() or "password" in str(exc).lower():
            raise ParseError("encrypted PDF that cannot be opened without a password") from exc
        raise ParseError(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc


def _clean(text: str) -> str:
    text = text.replace("\x00", "").replace("\u00ad", "")
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def _table_text(html: str | None) -> str:
    """A table as one row per line, cells separated by ' | ' (readable and embeddable)."""
    if not html:
        return ""
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(html)
    except Exception:
        return ""
    rows = []
    for tr in root.iter("tr"):
        cells = [_clean(cell.text_content()) for cell in tr if cell.tag in {"td", "th"}]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
