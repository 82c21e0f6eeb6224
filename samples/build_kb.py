"""Regenerate the DOCX and PDF files of the Kestrel Labs demo knowledge base.

Sources live in samples/kestrel/sources/*.md, written in a small Markdown-like format:

    %title Document title            (first page title; DOCX "Title" style)
    %subtitle One line under the title
    %footer Text shown in the PDF page footer, before "Page N"
    # Heading                         (Heading 1)
    ## Heading                        (Heading 2)
    - item                            (bulleted list)
    1. item                           (numbered list, restarts at 1 for every list)
    | a | b |                         (table; first row is the header, a |---| row follows it)
    \\pagebreak                        (PDF page boundary; ignored in DOCX)
    **bold** inline; any other line is paragraph text (consecutive lines are joined).

The Markdown, HTML and text documents in samples/kestrel/docs/ are written by hand and are
not generated. Output is byte-for-byte deterministic: PDFs use reportlab's invariant mode
and DOCX files are re-zipped with fixed timestamps and fixed document properties.

Usage: python samples/build_kb.py [--out DIR]    (default: samples/kestrel/docs)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "kestrel" / "sources"
DEFAULT_OUT = HERE / "kestrel" / "docs"

# Which sources become which format, and how many pages each PDF must have: the golden
# questions cite PDF pages, so a layout change that moves content to another page fails loudly.
TARGETS = {
    "k2_product_manual.md": ("pdf", 8),
    "information_security_policy.md": ("pdf", 3),
    "k2_firmware_release_notes.md": ("pdf", 3),
    "expense_policy.md": ("docx", None),
    "it_laptop_replacement.md": ("docx", None),
    "benefits_overview.md": ("docx", None),
}

FIXED_DATE = dt.datetime(2025, 3, 1, 9, 0, 0)
ZIP_DATE = (2025, 3, 1, 9, 0, 0)
AUTHOR = "Kestrel Labs"


# --------------------------------------------------------------------------- parsing


@dataclass
class Source:
    meta: dict[str, str] = field(default_factory=dict)
    blocks: list[tuple] = field(default_factory=list)


def parse_source(text: str) -> Source:
    src = Source()
    para: list[str] = []
    items: list[str] = []
    list_kind: str | None = None
    rows: list[list[str]] = []

    def flush() -> None:
        nonlocal para, items, list_kind, rows
        if para:
            src.blocks.append(("p", " ".join(para)))
            para = []
        if items:
            src.blocks.append((list_kind, items))
            items, list_kind = [], None
        if rows:
            src.blocks.append(("table", rows))
            rows = []

    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if stripped.startswith("%"):
            key, _, value = stripped[1:].partition(" ")
            src.meta[key] = value.strip()
            continue
        if not stripped:
            flush()
            continue
        if stripped == "\\pagebreak":
            flush()
            src.blocks.append(("pagebreak",))
            continue
        if stripped.startswith("## "):
            flush()
            src.blocks.append(("h2", stripped[3:].strip()))
            continue
        if stripped.startswith("# "):
            flush()
            src.blocks.append(("h1", stripped[2:].strip()))
            continue
        if stripped.startswith("|"):
            if para or items:
                flush()
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue  # header separator row
            rows.append(cells)
            continue
        bullet = re.match(r"^- (.*)$", stripped)
        number = re.match(r"^\d+\. (.*)$", stripped)
        if bullet or number:
            kind = "ul" if bullet else "ol"
            if para or rows or (items and list_kind != kind):
                flush()
            list_kind = kind
            items.append((bullet or number).group(1))
            continue
        if items:  # continuation of the previous list item
            items[-1] += " " + stripped
            continue
        if rows:
            flush()
        para.append(stripped)
    flush()
    for row in (b for b in src.blocks if b[0] == "table"):
        widths = {len(r) for r in row[1]}
        if len(widths) != 1:
            raise ValueError(f"table with ragged rows: {row[1][0]}")
    return src


def inline_runs(text: str) -> list[tuple[str, bool]]:
    """Split '**bold**' markup into (text, bold) runs."""
    parts = re.split(r"(\*\*.+?\*\*)", text)
    runs = []
    for part in parts:
        if not part:
            continue
        if part.startswith("**") and part.endswith("**"):
            runs.append((part[2:-2], True))
        else:
            runs.append((part, False))
    return runs


def plain(text: str) -> str:
    return text.replace("**", "")


# --------------------------------------------------------------------------- PDF


def build_pdf(src: Source, out: Path, expected_pages: int | None) -> int:
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_LEFT
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import inch
    from reportlab.platypus import (
        ListFlowable,
        ListItem,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    body = ParagraphStyle("Body", fontName="Helvetica", fontSize=9.8, leading=13, spaceAfter=5, alignment=TA_LEFT)
    title = ParagraphStyle("DocTitle", fontName="Helvetica-Bold", fontSize=19, leading=23, spaceAfter=4)
    subtitle = ParagraphStyle(
        "DocSubtitle", fontName="Helvetica-Oblique", fontSize=8.8, leading=11.5, textColor=colors.HexColor("#444444"),
        spaceAfter=12,
    )
    h1 = ParagraphStyle("H1", fontName="Helvetica-Bold", fontSize=14.5, leading=18, spaceBefore=6, spaceAfter=6,
                        textColor=colors.HexColor("#12355b"))
    h2 = ParagraphStyle("H2", fontName="Helvetica-Bold", fontSize=11.5, leading=14.5, spaceBefore=6, spaceAfter=3)
    cell = ParagraphStyle("Cell", fontName="Helvetica", fontSize=8.6, leading=10.6)
    head_cell = ParagraphStyle("HeadCell", parent=cell, fontName="Helvetica-Bold")

    def para(text: str, style) -> Paragraph:
        check_winansi(text)
        return Paragraph(markup(text), style)

    doc = SimpleDocTemplate(
        str(out),
        pagesize=letter,
        leftMargin=0.85 * inch,
        rightMargin=0.85 * inch,
        topMargin=0.75 * inch,
        bottomMargin=0.8 * inch,
        title=src.meta.get("title", out.stem),
        author=AUTHOR,
        subject=src.meta.get("subtitle", ""),
        creator="ragtune samples/build_kb.py",
        invariant=1,
    )
    width = doc.width
    footer = src.meta.get("footer", src.meta.get("title", ""))

    def on_page(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.8)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawString(doc.leftMargin, 0.5 * inch, footer)
        canvas.drawRightString(doc.leftMargin + width, 0.5 * inch, f"Page {document.page}")
        canvas.restoreState()

    story = []
    if "title" in src.meta:
        story.append(para(src.meta["title"], title))
    if "subtitle" in src.meta:
        story.append(para(src.meta["subtitle"], subtitle))
    for block in src.blocks:
        kind = block[0]
        if kind == "pagebreak":
            story.append(PageBreak())
        elif kind == "h1":
            story.append(para(block[1], h1))
        elif kind == "h2":
            story.append(para(block[1], h2))
        elif kind == "p":
            story.append(para(block[1], body))
        elif kind in ("ul", "ol"):
            flow = [ListItem(para(item, ParagraphStyle("Item", parent=body, spaceAfter=2))) for item in block[1]]
            opts = dict(bulletType="bullet", start="\u2022") if kind == "ul" else dict(bulletType="1")
            story.append(ListFlowable(flow, leftIndent=16, bulletFontName="Helvetica", bulletFontSize=9, **opts))
            story.append(Spacer(1, 4))
        elif kind == "table":
            rows = block[1]
            data = [[para(c, head_cell) for c in rows[0]]] + [[para(c, cell) for c in r] for r in rows[1:]]
            table = Table(data, colWidths=column_widths(rows, width), repeatRows=1, hAlign="LEFT")
            table.setStyle(
                TableStyle(
                    [
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dde5ef")),
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#8a9bb0")),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                    ]
                )
            )
            story.append(table)
            story.append(Spacer(1, 8))
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    pages = doc.page
    if expected_pages is not None and pages != expected_pages:
        raise SystemExit(
            f"{out.name}: {pages} pages, expected {expected_pages}; a page overflowed its \\pagebreak "
            "and the golden page citations would no longer hold"
        )
    return pages


def markup(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)


def check_winansi(text: str) -> None:
    """The standard PDF fonts only cover cp1252; anything else would print as a black box."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError as exc:
        raise SystemExit(f"character not printable with the standard PDF fonts: {text[exc.start:exc.end]!r} in {text!r}")


def column_widths(rows: list[list[str]], total: float, font_size: float = 8.6) -> list[float]:
    """Columns as wide as their content needs, never narrower than their longest word."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    pad = 14.0  # cell padding is 6 pt on each side

    def width(text: str, row: int) -> float:
        return stringWidth(plain(text), "Helvetica-Bold" if row == 0 else "Helvetica", font_size)

    ncols = len(rows[0])
    natural = [max(width(r[i], n) for n, r in enumerate(rows)) + pad for i in range(ncols)]
    minimum = [max(width(w, n) for n, r in enumerate(rows) for w in (plain(r[i]).split() or [""])) + pad
               for i in range(ncols)]
    if sum(natural) <= total:
        return [w * total / sum(natural) for w in natural]
    weights = [min(n, total * 0.55) for n in natural]
    widths = [w * total / sum(weights) for w in weights]
    for _ in range(ncols):  # pin too-narrow columns at their minimum, share the rest
        pinned = [i for i in range(ncols) if widths[i] < minimum[i]]
        if not pinned:
            break
        free = total - sum(minimum[i] for i in pinned)
        rest = sum(weights[i] for i in range(ncols) if i not in pinned)
        widths = [minimum[i] if i in pinned else weights[i] * free / rest for i in range(ncols)]
    return widths


# --------------------------------------------------------------------------- DOCX


def build_docx(src: Source, out: Path) -> None:
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    props = doc.core_properties
    props.title = src.meta.get("title", out.stem)
    props.subject = src.meta.get("subtitle", "")
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.comments = "Demo document written for the ragtune project; regenerate with samples/build_kb.py"
    props.keywords = "Kestrel Labs; ragtune demo"
    props.category = "Internal documentation"
    props.created = FIXED_DATE
    props.modified = FIXED_DATE
    props.last_printed = FIXED_DATE
    props.revision = 1

    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(11)

    if "title" in src.meta:
        doc.add_heading(src.meta["title"], level=0)
    if "subtitle" in src.meta:
        add_runs(doc.add_paragraph(style="Subtitle"), src.meta["subtitle"])
    for block in src.blocks:
        kind = block[0]
        if kind == "pagebreak":
            continue  # DOCX is treated as non-paginated; no explicit breaks
        if kind == "h1":
            doc.add_heading(plain(block[1]), level=1)
        elif kind == "h2":
            doc.add_heading(plain(block[1]), level=2)
        elif kind == "p":
            add_runs(doc.add_paragraph(), block[1])
        elif kind == "ul":
            for item in block[1]:
                add_runs(doc.add_paragraph(style="List Bullet"), item)
        elif kind == "ol":
            num_id = new_numbering(doc)
            for item in block[1]:
                p = doc.add_paragraph(style="List Number")
                num_pr = p._p.get_or_add_pPr().get_or_add_numPr()
                num_pr.get_or_add_ilvl().val = 0
                num_pr.get_or_add_numId().val = num_id
                add_runs(p, item)
        elif kind == "table":
            rows = block[1]
            table = doc.add_table(rows=len(rows), cols=len(rows[0]))
            table.style = doc.styles["Table Grid"]
            for r, row in enumerate(rows):
                for c, text in enumerate(row):
                    paragraph = table.cell(r, c).paragraphs[0]
                    add_runs(paragraph, text, bold=(r == 0))
            mark_header_row(table)
            doc.add_paragraph()

    buffer = io.BytesIO()
    doc.save(buffer)
    out.write_bytes(normalise_zip(buffer.getvalue()))


def add_runs(paragraph, text: str, bold: bool = False) -> None:
    for chunk, is_bold in inline_runs(text):
        run = paragraph.add_run(chunk)
        if bold or is_bold:
            run.bold = True


def new_numbering(doc) -> int:
    """A fresh numbering instance of the 'List Number' list, so every list starts at 1."""
    numbering = doc.part.numbering_part.element
    style_num_id = doc.styles["List Number"].element.pPr.numPr.numId.val
    abstract_id = numbering.num_having_numId(style_num_id).abstractNumId.val
    num = numbering.add_num(abstract_id)
    num.add_lvlOverride(ilvl=0).add_startOverride(1)
    return num.numId


def mark_header_row(table) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)


def normalise_zip(data: bytes) -> bytes:
    """Rewrite the DOCX zip with fixed timestamps and attributes (python-docx stamps 'now')."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            fixed.create_system = 3
            dst.writestr(fixed, src.read(info.filename), compresslevel=9)
    return out.getvalue()


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: samples/kestrel/docs)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (fmt, pages) in TARGETS.items():
        src = parse_source((SOURCES / name).read_text(encoding="utf-8"))
        target = args.out / (Path(name).stem + "." + fmt)
        if fmt == "pdf":
            count = build_pdf(src, target, pages)
            detail = f"{count} pages"
        else:
            build_docx(src, target)
            detail = "docx"
        digest = hashlib.sha256(target.read_bytes()).hexdigest()[:16]
        print(f"{target.name:36} {detail:10} sha256:{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
