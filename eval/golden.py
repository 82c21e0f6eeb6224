"""Golden sets: the questions an evaluation asks, with reference answers and reference sources.

One JSON object per line (the format of the Contoso golden files):

    {"id": "hr-001", "question": "...", "reference": "the expected answer",
     "sources": [{"document": "handbook.pdf", "page": 12}]}          # answerable
    {"id": "hr-900", "question": "...", "reference": null, "answerable": false, "sources": []}

`answerable` defaults to true when a reference is given. Pages are 1-based; a source without a
page matches any page of its document. CSV imports (`ragtune golden import-csv`) take the columns
id, question, reference, answerable, sources ("file.pdf:12; other.docx").
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable


class GoldenError(ValueError):
    """A golden file that cannot be used; the message names the file and line."""


@dataclass
class Source:
    document: str
    page: int | None = None


@dataclass
class GoldenRow:
    id: str
    question: str
    reference: str | None
    answerable: bool = True
    sources: list[Source] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_row(data: Any, where: str) -> GoldenRow:
    if not isinstance(data, dict):
        raise GoldenError(f"{where}: expected a JSON object")
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise GoldenError(f"{where}: 'question' must be a non-empty string")
    reference = data.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise GoldenError(f"{where}: 'reference' must be a string or null")
    answerable = data.get("answerable", bool(reference))
    if not isinstance(answerable, bool):
        raise GoldenError(f"{where}: 'answerable' must be true or false")
    if answerable and not (reference or "").strip():
        raise GoldenError(f"{where}: an answerable question needs a reference answer")
    sources = []
    for item in data.get("sources") or []:
        if not isinstance(item, dict) or not isinstance(item.get("document"), str):
            raise GoldenError(f"{where}: each source needs a 'document' (file name)")
        page = item.get("page")
        if page is not None and (not isinstance(page, int) or page < 1):
            raise GoldenError(f"{where}: source page must be a positive integer")
        sources.append(Source(item["document"], page))
    ident = str(data.get("id") or "").strip() or where
    return GoldenRow(ident, " ".join(question.split()), reference, answerable, sources)


def load(path: str | Path) -> list[GoldenRow]:
    """A .jsonl or .csv golden file, validated; ids must be unique."""
    path = Path(path)
    if not path.is_file():
        raise GoldenError(f"golden set {path} does not exist")
    rows = list(_from_csv(path) if path.suffix.lower() == ".csv" else _from_jsonl(path))
    if not rows:
        raise GoldenError(f"{path}: no questions")
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise GoldenError(f"{path}: duplicate id {row.id!r}")
        seen.add(row.id)
    return rows


def load_many(paths: Iterable[str | Path]) -> list[GoldenRow]:
    rows: list[GoldenRow] = []
    for path in paths:
        rows += load(path)
    if len({r.id for r in rows}) != len(rows):
        raise GoldenError("the golden files share question ids; give each question a unique id")
    return rows


def write_jsonl(rows: Iterable[GoldenRow], path: str | Path) -> int:
    lines = [json.dumps(row.to_dict(), ensure_ascii=False) for row in rows]
    Path(path).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


def _from_jsonl(path: Path) -> Iterable[GoldenRow]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldenError(f"{path}:{number}: not JSON ({exc.msg})") from None
        yield parse_row(data, f"{path.name}:{number}")


def _from_csv(path: Path) -> Iterable[GoldenRow]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "question" not in reader.fieldnames:
            raise GoldenError(f"{path}: the header needs at least a 'question' column")
        for number, record in enumerate(reader, start=2):
            flag = (record.get("answerable") or "").strip().lower()
            reference = (record.get("reference") or "").strip() or None
            data = {"id": record.get("id"), "question": record.get("question"), "reference": reference,
                    "answerable": flag in ("", "1", "true", "yes", "y") if flag else bool(reference),
                    "sources": [_source(s) for s in (record.get("sources") or "").split(";") if s.strip()]}
            yield parse_row(data, f"{path.name}:{number}")


def _source(text: str) -> dict[str, Any]:
    document, _, page = text.strip().rpartition(":")
    if document and page.strip().isdigit():
        return {"document": document.strip(), "page": int(page)}
    return {"document": text.strip()}
