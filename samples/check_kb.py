"""Check the Kestrel Labs demo knowledge base and its golden question sets.

Run: python samples/check_kb.py      (exit status 0 when every check passes)

1. Both golden JSONL files parse, have exactly the documented fields, and ids are unique.
2. Every cited document exists in samples/kestrel/docs/; PDF citations carry a 1-based page
   within the document, other formats carry page null.
3. Evidence: for every answerable question, distinctive phrases of its answer occur on the
   cited PDF page (text extracted with pypdf) or in the cited document's text.
4. Unanswerable questions: phrases that would answer them occur in no document.
5. The document set: formats, word counts (400-2500), PDF page counts, headings and tables.
6. Determinism: samples/build_kb.py is run twice into temporary folders; both builds and the
   committed DOCX/PDF files must have identical sha256 digests.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
KB = HERE / "kestrel"
DOCS = KB / "docs"
GOLDEN = KB / "golden"

ANSWERABLE_KEYS = {"id", "question", "reference", "sources"}
UNANSWERABLE_KEYS = {"id", "question", "reference", "answerable", "sources"}
EXPECTED_FORMATS = {".md": 5, ".html": 4, ".docx": 3, ".pdf": 3, ".txt": 1}
PDF_PAGES = {"k2_product_manual.pdf": (6, 10)}  # every other PDF: 2 to 4 pages

# Distinctive phrases of each reference answer that must occur in the cited place
# (case-insensitive, whitespace-normalised). Kept here, not in the JSONL.
EVIDENCE = {
    'kestrel-001': ['not certified for use in explosive atmospheres'],
    'kestrel-002': ['charged to 30 percent for transport'],
    'kestrel-003': ['8 differential channels', '4-20 mA'],
    'kestrel-004': ['-40 °C to +70 °C', 'battery charging 0 °C to +45 °C'],
    'kestrel-005': ['cable glands facing downward'],
    'kestrel-006': ['M5 grounding lug', 'longer than 10 m', 'cathodic protection'],
    'kestrel-007': ['15 minutes', 'Every 6 hours', '2 years'],
    'kestrel-008': ['closes the data files safely', 'rises above 10 percent'],
    'kestrel-009': ['30 percent less'],
    'kestrel-010': ['default logging interval is 60 seconds', '1 second to 24 hours'],
    'kestrel-011': ['6-digit pairing PIN', 'inside the lid'],
    'kestrel-012': ['50 MB of data per logger per month'],
    'kestrel-013': ['at least 90 days of data', 'oldest first'],
    'kestrel-014': ['E412', 'Cellular network registration failed'],
    'kestrel-015': ['E701', 'Moisture inside the enclosure', 'Replace the desiccant pack'],
    'kestrel-016': ['hold the MODE button for 10 seconds', 'keeps logged data'],
    'kestrel-017': ['3-year limited warranty', 'covered for 2 years'],
    'kestrel-018': ['Restricted', 'Firmware signing keys, customer measurement data'],
    'kestrel-019': ['meets quarterly', 'the CTO, the COO and the General Counsel'],
    'kestrel-020': ['within 21 days', '72 hours'],
    'kestrel-021': ['USB storage devices are blocked', 'encrypted Kestrel-issued USB drives'],
    'kestrel-022': ['valid for at most 6', 'approved by the CISO'],
    'kestrel-023': ['15-minute refresher module', 'four times a year'],
    'kestrel-024': ['March 18, 2025'],
    'kestrel-025': ['500 samples per second for up to 5 minutes'],
    'kestrel-026': ['up to 32 Modbus RTU devices, up from 16'],
    'kestrel-027': ['KEST-4211', 'reconnection loop'],
    'kestrel-028': ['must first update to 4.1.4'],
    'kestrel-029': ['4.2.x', 'December 31, 2025'],
    'kestrel-030': ['3 to 5 completed years of service: 23 days'],
    'kestrel-031': ['carry up to 5 unused PTO days', 'used by March 31'],
    'kestrel-032': ['16 weeks of fully paid parental leave', 'same for birth and non-birth parents'],
    'kestrel-033': ['anchor days: Tuesday and Thursday'],
    'kestrel-034': ['20 working days per calendar year', 'at least 15 business days before you go'],
    'kestrel-035': ['home office stipend of $600', 'internet allowance of $50'],
    'kestrel-036': ['$75 per source per calendar year', 'within 5 business days'],
    'kestrel-037': ['1-800-555-0142', 'anonymously'],
    'kestrel-038': ['within 30 days of it arising', 'Conflict of Interest disclosure form'],
    'kestrel-039': ['10:30', 'IT setup: laptop'],
    'kestrel-040': ['within 7 days of your start date', 'suspended automatically'],
    'kestrel-041': ['every second Wednesday from 09:00 to 12:30'],
    'kestrel-042': ['15 minutes after 8 failed sign-in attempts'],
    'kestrel-043': ['not supported', 'SIM swapping'],
    'kestrel-044': ['valid for 12 hours', 'video call'],
    'kestrel-045': ['vpn-eu.kestrel.example', 'Rotterdam office'],
    'kestrel-046': ['12 hours', 'asleep for more than 2 hours'],
    'kestrel-047': ['UDP port 51820', 'TCP port 443'],
    'kestrel-048': ['within 24 hours', 'deleted automatically'],
    'kestrel-049': ['200 colour pages per calendar month'],
    'kestrel-050': ['London, United Kingdom', '£240'],
    'kestrel-051': ['more than 9 hours', 'written VP approval'],
    'kestrel-052': ['cabin baggage', 'up to 4 spare packs'],
    'kestrel-053': ['first and last day of a trip you receive 75 percent'],
    'kestrel-054': ['Maple Street parking lot across the street'],
    'kestrel-055': ['The first replacement is free', '$25'],
    'kestrel-056': ['Peregrine', 'booking approved by the executive assistants'],
    'kestrel-057': ['P2', '1 hour', '1 business day'],
    'kestrel-058': ['Open 10:00 to 16:00, Monday to Friday'],
    'kestrel-059': ['Email is kept for 90 days'],
    'kestrel-060': ['$2,500.01 to $10,000', 'Your department director'],
    'kestrel-061': ['$0.70 per mile'],
    'kestrel-062': ['$100 per person, including tip'],
    'kestrel-063': ['Missing Receipt Declaration', 'at most 2 declarations per calendar quarter'],
    'kestrel-064': ['Panasonic Toughbook 40', '32 GB RAM'],
    'kestrel-065': ['flat price of $150', 'cannot be sold'],
    'kestrel-066': ['within 1 hour', 'police within 48 hours'],
    'kestrel-067': ['100 percent of the first 4 percent', 'vest immediately'],
    'kestrel-068': ['Silver PPO', '$1,000 / $2,000'],
    'kestrel-069': ['November 1 to November 15'],
    'kestrel-070': ['$2,000 per year for family coverage'],
}

ABSENT = {
    'kestrel-u-001': ['\\bK3\\b'],
    'kestrel-u-002': ['\\broth\\b'],
    'kestrel-u-003': ['\\breferral', '\\bbonus'],
    'kestrel-u-004': ['guest wi-?fi', 'wi-?fi password'],
    'kestrel-u-005': ['list price', 'price of (a|the) k2', 'k2 costs'],
    'kestrel-u-006': ['singapore office'],
    'kestrel-u-007': ['\\bdogs?\\b', '\\bpets?\\b'],
    'kestrel-u-008': ['altitude'],
    'kestrel-u-009': ['wedding', 'marriage leave'],
    'kestrel-u-010': ['\\bdress\\b'],
    'kestrel-u-011': ['\\b5\\.0\\b'],
    'kestrel-u-012': ['company cars?\\b'],
    'kestrel-u-013': ['\\bCFO\\b', 'chief financial'],
    'kestrel-u-014': ['\\bbonus'],
    'kestrel-u-015': ['KL-SP20[^.]*\\bIP\\d\\d'],
}


# --------------------------------------------------------------------------- text extraction


def norm(text: str) -> str:
    text = text.replace("\u00a0", " ").replace("**", "").replace("`", "")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"-\s+", "-", text)  # a line broken after a hyphen
    return text.strip().lower()


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: Counter = Counter()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        self.parts.append(" ")

    def handle_endtag(self, tag):
        self.parts.append(" ")

    def handle_data(self, data):
        self.parts.append(data)


def pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(str(path)).pages]


def docx_text(path: Path) -> tuple[str, Counter, int]:
    import docx

    document = docx.Document(str(path))
    styles = Counter(p.style.name for p in document.paragraphs)
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts), styles, len(document.tables)


def html_text(path: Path) -> tuple[str, Counter]:
    parser = _HTMLText()
    parser.feed(path.read_text(encoding="utf-8"))
    return html.unescape("".join(parser.parts)), parser.tags


def word_count(text: str) -> int:
    return len([w for w in text.split() if re.search(r"[A-Za-z0-9]", w)])


# --------------------------------------------------------------------------- checks


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def ok(self, condition: bool, message: str) -> bool:
        if condition:
            self.passed += 1
        else:
            self.failures.append(message)
        return condition


def load_jsonl(path: Path, check: Checker) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            check.ok(False, f"{path.name}:{n}: not JSON ({exc})")
    return rows


def main() -> int:
    check = Checker()
    docs = {p.name: p for p in sorted(DOCS.iterdir()) if p.is_file()}

    # ---- the documents
    texts: dict[str, str] = {}
    pages: dict[str, list[str]] = {}
    summary = []
    formats = Counter(p.suffix for p in docs.values())
    for suffix, count in EXPECTED_FORMATS.items():
        check.ok(formats[suffix] == count, f"expected {count} {suffix} documents, found {formats[suffix]}")
    check.ok(sum(formats.values()) >= 16, f"only {sum(formats.values())} documents")
    for name, path in docs.items():
        suffix = path.suffix
        detail = ""
        if suffix == ".pdf":
            pages[name] = pdf_pages(path)
            text = "\n".join(pages[name])
            low, high = PDF_PAGES.get(name, (2, 4))
            check.ok(low <= len(pages[name]) <= high, f"{name}: {len(pages[name])} pages, expected {low}-{high}")
            detail = f"{len(pages[name])} pages"
        elif suffix == ".docx":
            text, styles, tables = docx_text(path)
            check.ok(styles["Heading 1"] > 0 and styles["Heading 2"] > 0, f"{name}: no Heading 1/Heading 2 paragraphs")
            detail = f"{tables} tables"
        elif suffix == ".html":
            text, tags = html_text(path)
            check.ok(tags["h1"] == 1 and tags["h2"] > 0 and tags["p"] > 0 and tags["ul"] + tags["ol"] > 0,
                     f"{name}: missing <h1>/<h2>/<p>/<ul> structure")
            detail = f"{tags['table']} tables"
        else:
            text = path.read_text(encoding="utf-8")
            if suffix == ".md":
                check.ok(text.startswith("# ") and "\n## " in text, f"{name}: no Markdown headings")
        texts[name] = norm(text)
        words = word_count(text)
        check.ok(400 <= words <= 2500, f"{name}: {words} words, expected 400-2500")
        summary.append(f"  {name:34} {suffix[1:]:5} {words:5} words  {detail}")
    check.ok(any(html_text(p)[1]["table"] for n, p in docs.items() if n.endswith(".html")), "no table in any HTML file")
    check.ok(any(docx_text(p)[2] for n, p in docs.items() if n.endswith(".docx")), "no table in any DOCX file")
    sources = KB / "sources"
    check.ok(any("\n| " in (sources / (Path(n).stem + ".md")).read_text(encoding="utf-8")
                 for n in docs if n.endswith(".pdf")), "no table in any PDF source")

    # ---- golden answerable
    answerable = load_jsonl(GOLDEN / "answerable.jsonl", check)
    unanswerable = load_jsonl(GOLDEN / "unanswerable.jsonl", check)
    ids = [r.get("id") for r in answerable + unanswerable]
    duplicates = [i for i, c in Counter(ids).items() if c > 1]
    check.ok(not duplicates, f"duplicate ids: {duplicates}")
    check.ok(len(answerable) >= 45, f"only {len(answerable)} answerable questions")
    check.ok(len(unanswerable) >= 12, f"only {len(unanswerable)} unanswerable questions")
    check.ok(set(EVIDENCE) == {r.get("id") for r in answerable}, "EVIDENCE keys do not match the answerable ids")
    per_doc: Counter = Counter()
    pdf_cites: set[tuple[str, int]] = set()
    for row in answerable:
        qid = row.get("id", "?")
        if not check.ok(set(row) == ANSWERABLE_KEYS, f"{qid}: fields {sorted(row)}"):
            continue
        check.ok(re.fullmatch(r"kestrel-\d{3}", qid) is not None, f"{qid}: bad id")
        check.ok(isinstance(row["question"], str) and row["question"].endswith("?"), f"{qid}: question")
        ref = row["reference"]
        sentences = len(re.findall(r"[.!?](\s|$)", ref)) if isinstance(ref, str) else 0
        check.ok(1 <= sentences <= 3, f"{qid}: reference must be 1-3 sentences, has {sentences}")
        check.ok(isinstance(row["sources"], list) and len(row["sources"]) >= 1, f"{qid}: no sources")
        for source in row["sources"]:
            if not check.ok(set(source) == {"document", "page"}, f"{qid}: source fields {sorted(source)}"):
                continue
            name, page = source["document"], source["page"]
            per_doc[name] += 1
            if not check.ok(name in docs, f"{qid}: document {name!r} not in docs/"):
                continue
            if name.endswith(".pdf"):
                if not check.ok(isinstance(page, int) and 1 <= page <= len(pages[name]),
                                f"{qid}: page {page!r} outside 1..{len(pages[name])} of {name}"):
                    continue
                pdf_cites.add((name, page))
                for phrase in EVIDENCE.get(qid, []):
                    found_on = [n for n, t in enumerate(pages[name], 1) if norm(phrase) in norm(t)]
                    check.ok(page in found_on, f"{qid}: {phrase!r} not on {name} page {page} (found on pages {found_on})")
            else:
                check.ok(page is None, f"{qid}: {name} is not paginated, page must be null")
                for phrase in EVIDENCE.get(qid, []):
                    check.ok(norm(phrase) in texts[name], f"{qid}: evidence {phrase!r} not found in {name}")
    pdf_questions = sum(n for d, n in per_doc.items() if d.endswith(".pdf"))
    check.ok(pdf_questions >= 12, f"only {pdf_questions} questions cite PDF pages")
    check.ok(set(per_doc) == set(docs), f"documents without questions: {sorted(set(docs) - set(per_doc))}")

    # ---- golden unanswerable
    check.ok(set(ABSENT) == {r.get("id") for r in unanswerable}, "ABSENT keys do not match the unanswerable ids")
    everything = "\n".join(texts.values())
    for row in unanswerable:
        qid = row.get("id", "?")
        if not check.ok(set(row) == UNANSWERABLE_KEYS, f"{qid}: fields {sorted(row)}"):
            continue
        check.ok(re.fullmatch(r"kestrel-u-\d{3}", qid) is not None, f"{qid}: bad id")
        check.ok(row["reference"] is None and row["answerable"] is False and row["sources"] == [],
                 f"{qid}: reference must be null, answerable false, sources []")
        for pattern in ABSENT.get(qid, []):
            hits = [n for n, t in texts.items() if re.search(pattern, t, re.IGNORECASE)]
            check.ok(not hits, f"{qid}: {pattern!r} occurs in {hits}; the question may be answerable")

    # ---- determinism
    builder = HERE / "build_kb.py"
    digests = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in ("a", "b"):
            out = Path(tmp) / run
            result = subprocess.run([sys.executable, str(builder), "--out", str(out)], capture_output=True, text=True)
            if not check.ok(result.returncode == 0, f"build_kb.py failed: {result.stderr.strip()[-500:]}"):
                break
            digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
    committed = {n: hashlib.sha256(docs[n].read_bytes()).hexdigest() for n in (digests[0] if digests else {}) if n in docs}
    if len(digests) == 2:
        check.ok(digests[0] == digests[1], "two builds differ: output is not deterministic")
        check.ok(digests[0] == committed, "committed DOCX/PDF files differ from a fresh build: run samples/build_kb.py")

    # ---- report
    print("Documents:")
    print("\n".join(summary))
    print(f"Answerable questions: {len(answerable)} ({pdf_questions} citing {len(pdf_cites)} distinct PDF pages); "
          f"unanswerable: {len(unanswerable)}")
    print("Questions per document: " + ", ".join(f"{d} {n}" for d, n in sorted(per_doc.items())))
    if len(digests) == 2:
        print(f"Determinism: 2 builds x {len(digests[0])} files, identical to each other and to docs/: "
              f"{digests[0] == digests[1] == committed}")
        for name, digest in digests[0].items():
            print(f"  {name:34} sha256 {digest[:16]}")
    for failure in check.failures:
        print("FAIL", failure)
    print(f"{check.passed} checks passed, {len(check.failures)} failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
