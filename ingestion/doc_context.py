"""What a document is about, in one line: title, issuer and period, found in its first pages.

Each chunk's embedded and BM25-indexed text starts with this header, so a chunk of one company's
quarterly report carries the company and the quarter even when its own words name neither (the
filing's cover page does, once). The heuristics are plain regular expressions over the first
pages' text, because the signals are formulaic where they exist:

- issuer: the line before "(Exact name of registrant as specified in its charter)" on an SEC cover
  page, else the first "Name Inc./Corporation/Ltd./LLC/plc/…" on the first pages;
- period: "for the quarterly period ended March 31, 2024", "fiscal year ended …", "Q2 2023",
  "second quarter of fiscal 2023";
- form: "Form 10-Q" / "Form 10-K" / "Form 8-K" / "Form 20-F".

Nothing found means an empty field, never a guess: the header is then the title alone (as before).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

_FIRST_PAGES = 3  # cover and the first pages after it; later pages quote other companies and periods
_MAX_CHARS = 20_000  # of text scanned, so a document without pages costs the same as one with them

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = rf"{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}"
_REGISTRANT = re.compile(r"([A-Z][A-Za-z0-9&.,'’ -]{1,80}?)\s*\(\s*Exact name of registrant", re.IGNORECASE)
# "Company" is left out: filings call themselves "the Company", and role titles end in it too.
_SUFFIX = r"(?:(?i:Inc\.?|Incorporated|Corporation|Corp\.?|Ltd\.?|Limited)|LLC|L\.L\.C\.|plc|PLC|N\.V\.|S\.A\.|AG|SE|GmbH)"
_COMPANY = re.compile(rf"\b((?:[A-Z][A-Za-z0-9&'’.-]*\s+){{0,3}}[A-Z][A-Za-z0-9&'’.-]*,?\s+{_SUFFIX})(?![A-Za-z])")
_PERIOD_ENDED = re.compile(
    rf"\b(?:for\s+the\s+)?((?:quarterly|fiscal|annual|transition)?\s*(?:period|quarter|year)\s+ended\s+{_DATE})",
    re.IGNORECASE,
)
_QUARTER = re.compile(r"\b(Q[1-4]\s+(?:FY\s?)?(?:19|20)\d{2})\b")
_QUARTER_WORDS = re.compile(
    r"\b((?:first|second|third|fourth)\s+quarter\s+of\s+(?:fiscal\s+(?:year\s+)?)?(?:19|20)\d{2})\b", re.IGNORECASE
)
_FORM = re.compile(r"\bForm\s+(10-Q|10-K|8-K|20-F|6-K|S-1)\b", re.IGNORECASE)
# Capitalised words that end a _COMPANY match but are not a name ("The Company", "Our Corporation").
_NOT_NAMES = {"the", "our", "this", "such", "each", "any", "a", "an", "parent", "holding"}


@dataclass(frozen=True)
class DocContext:
    title: str
    issuer: str = ""
    period: str = ""
    form: str = ""

    def header(self) -> str:
        """"title | issuer | form | period", empty parts left out."""
        issuer = self.issuer if self.issuer.lower() not in self.title.lower() else ""
        form = f"Form {self.form}" if self.form else ""
        return " | ".join(part for part in (self.title, issuer, form, self.period) if part)


def describe(elements: Sequence[dict[str, Any]], title: str) -> DocContext:
    """The context of a parsed document (elements as `parsing.parse_path` returns them)."""
    text = _opening_text(elements)
    return DocContext(title=title, issuer=_issuer(text), period=_period(text), form=_form(text))


def _opening_text(elements: Sequence[dict[str, Any]]) -> str:
    pages = [e["page"] for e in elements if e.get("page")]
    first = min(pages) if pages else None
    parts, size = [], 0
    for element in elements:
        page = element.get("page")
        if first is not None and page is not None and page >= first + _FIRST_PAGES:
            break
        parts.append(element["text"])
        size += len(element["text"]) + 1
        if size >= _MAX_CHARS:
            break
    return "\n".join(parts)[:_MAX_CHARS]


def _issuer(text: str) -> str:
    match = _REGISTRANT.search(text)
    if match:
        name = match.group(1).strip(" ,-\n")
        # the registrant line often follows the form's own words on the same extracted line
        name = re.split(r"\s{2,}|\n|(?i:commission file number[: ]*[\d-]*)", name)[-1].strip(" ,-")
        if name:
            return _tidy(name)
    counts: Counter[str] = Counter()
    order: dict[str, int] = {}
    for match in _COMPANY.finditer(text):
        words = match.group(1).split()
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        if len(words) < 2:  # a bare suffix, or "The Company"
            continue
        name = _tidy(" ".join(words))
        counts[name] += 1
        order.setdefault(name, len(order))
    if not counts:
        return ""
    return max(counts, key=lambda n: (counts[n], -order[n]))  # most frequent, earliest on ties


def _period(text: str) -> str:
    found = []
    match = _PERIOD_ENDED.search(text)
    if match:
        found.append(" ".join(match.group(1).split()))
    for pattern in (_QUARTER, _QUARTER_WORDS):
        match = pattern.search(text)
        if match:
            found.append(" ".join(match.group(1).split()))
            break
    return ", ".join(found)


def _form(text: str) -> str:
    match = _FORM.search(text)
    return match.group(1).upper() if match else ""


def _tidy(name: str) -> str:
    name = " ".join(name.split()).strip(" ,")
    return name.title() if name.isupper() and len(name) > 4 else name
