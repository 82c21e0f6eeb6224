"""Structure-aware chunking bounded by the embedder's own token limit.

Elements are grouped into sections by heading; a section is packed and split with
LangChain's recursive splitter measuring length in the embedder's tokens, with overlap.
A section may run across a page break: each chunk cites the page it starts on (as a reader
would cite it) and records the page it ends on. Tables are kept whole when they fit the
embedder's window and otherwise split by rows with the header row repeated. Every chunk,
heading prefix included, is verified to fit the window: nothing is silently truncated.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.settings import ChunkingSettings
from ingestion.doc_context import describe
from ingestion.embedder import Embedder

_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]
_MAX_CONTEXT_CHARS = 240  # a heading path longer than this is cut to its last heading


@dataclass
class Chunk:
    text: str  # the passage shown to users and cited
    context: str  # document header (title | issuer | form | period) > heading path, prepended for embedding and BM25
    page: int | None  # page the chunk starts on (1-based)
    heading: str
    kind: str  # "text" or "table"
    token_count: int = 0  # tokens of embed_text, as the embedder counts them
    page_end: int | None = None  # page the chunk ends on

    @property
    def embed_text(self) -> str:
        return f"{self.context}\n{self.text}" if self.context else self.text


class Chunker:
    def __init__(self, settings: ChunkingSettings, embedder: Embedder):
        self.embedder = embedder
        self.cap = min(settings.max_tokens or embedder.max_tokens, embedder.max_tokens)
        self.target = min(settings.target_tokens, self.cap)
        self.overlap = min(settings.overlap_tokens, self.target // 2)
        self.heading_context = settings.heading_context
        self.document_context = settings.document_context
        self.page_boundaries = settings.page_boundaries

    def signature(self) -> str:
        """Changes whenever re-chunking would give different chunks (stored per document).

        v3: the context carries the document header (issuer, form, period). An index built by v2 differs in
        signature, so the next ingest re-parses and re-embeds each still-present file (its old chunks are
        replaced in one transaction; a file no longer on disk keeps its v2 chunks, still searchable).
        """
        flags = f"{int(self.heading_context)}{int(self.document_context)}{int(self.page_boundaries)}"
        return f"v3:{self.embedder.id}:{self.target}:{self.cap}:{self.overlap}:{flags}"

    def chunk(self, elements: list[dict[str, Any]], title: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        header = describe(elements, title).header() if self.document_context else title
        for section in _sections(elements, self.page_boundaries):
            context = self._context(header, section.heading)
            text = section.text
            if not self.heading_context and section.heading and section.kind == "text":
                text = f"{section.heading.split(' > ')[-1]}\n{text}"
            budget = self.target if section.kind == "text" else self.cap
            budget -= self._count(context) + 1 if context else 0
            if section.kind == "table":
                pieces = [(p, section.page_at(0), section.page_at(len(text) - 1)) for p in self._split_table(text, budget)]
            else:
                pieces = self._split_located(text, max(budget, 8), section, len(text) - len(section.text))
            for piece, page, page_end in pieces:
                if piece.strip():
                    chunks.append(Chunk(piece, context, page, section.heading, section.kind, page_end=page_end))
        return self._enforce_cap(chunks)

    def _split_located(self, text: str, budget: int, section: "_Section", shift: int) -> list[tuple[str, Any, Any]]:
        """Pieces of `text` with the pages their first and last characters are on."""
        located, previous = [], -1
        for piece in self._split(text, budget):
            # Pieces are substrings in order (overlap only moves the next start back a little).
            start = text.find(piece, previous + 1)
            start = max(previous, 0) if start < 0 else start
            previous = start
            begin, end = max(start - shift, 0), max(start + len(piece) - 1 - shift, 0)
            located.append((piece, section.page_at(begin), section.page_at(end)))
        return located

    def _context(self, title: str, heading: str) -> str:
        if not self.heading_context:
            return ""
        context = " > ".join(part for part in (title, heading) if part)
        if len(context) > _MAX_CONTEXT_CHARS:
            context = " > ".join(p for p in (title, heading.split(" > ")[-1]) if p)[:_MAX_CONTEXT_CHARS]
        return context

    def _count(self, text: str) -> int:
        return self.embedder.count_tokens([text])[0]

    def _split(self, text: str, budget: int) -> list[str]:
        if self._count(text) <= budget:
            return [text]
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=budget,
            chunk_overlap=min(self.overlap, budget // 2),
            length_function=self._count,
            separators=_SEPARATORS,
            keep_separator="end",
        )
        return splitter.split_text(text)

    def _split_table(self, text: str, budget: int) -> list[str]:
        if self._count(text) <= budget:
            return [text]
        header, *rows = text.split("\n")
        groups: list[str] = []
        current = [header]
        for row in rows:
            if self._count("\n".join([*current, row])) <= budget:
                current.append(row)
                continue
            if len(current) > 1:
                groups.append("\n".join(current))
            current = [header, row]
            if self._count("\n".join(current)) > budget:  # one row wider than the window
                groups.extend(self._split("\n".join(current), budget))
                current = [header]
        if len(current) > 1:
            groups.append("\n".join(current))
        return groups

    def _enforce_cap(self, chunks: list[Chunk]) -> list[Chunk]:
        counts = self.embedder.count_tokens([c.embed_text for c in chunks])
        result: list[Chunk] = []
        for chunk, count in zip(chunks, counts):
            if count <= self.cap:
                chunk.token_count = count
                result.append(chunk)
                continue
            # Token counts of joined pieces can exceed the sum of parts; split once more.
            budget = max(self.cap - (self._count(chunk.context) + 1 if chunk.context else 0), 8) * 3 // 4
            for piece in self._split(chunk.text, budget):
                part = Chunk(piece, chunk.context, chunk.page, chunk.heading, chunk.kind, page_end=chunk.page_end)
                part.token_count = self._count(part.embed_text)
                if part.token_count > self.cap:
                    raise ValueError(f"cannot fit a chunk into {self.cap} tokens")
                result.append(part)
        return result


@dataclass
class _Section:
    heading: str
    kind: str
    text: str = ""
    starts: list[int] = field(default_factory=list)  # offset in `text` where each element begins
    pages: list[Any] = field(default_factory=list)  # page of each element

    def add(self, text: str, page: int | None) -> None:
        if self.text:
            self.text += "\n"
        self.starts.append(len(self.text))
        self.pages.append(page)
        self.text += text

    def page_at(self, offset: int) -> int | None:
        return self.pages[max(bisect_right(self.starts, offset) - 1, 0)] if self.pages else None


def _sections(elements: Iterable[dict[str, Any]], page_boundaries: bool = False) -> Iterable[_Section]:
    """Body text grouped by heading (across page breaks unless `page_boundaries`); each table a section of its own.

    A Title that no body followed and that the next heading replaced (not a parent of it) is content,
    not structure: offline, unstructured labels short plain-text lines Title. Such orphans are kept
    as body lines of the next text section (or one section at the end) so no words are lost.
    """
    current = _Section("", "text")
    orphans: list[dict[str, Any]] = []
    last_title: dict[str, Any] | None = None  # the latest Title that has had no body yet
    for element in elements:
        kind = element["kind"]
        new_page = page_boundaries and current.pages and element["page"] != current.pages[-1]
        if kind == "Title" or kind == "Table" or element["heading"] != current.heading or new_page:
            if current.text:
                yield current
            current = _Section(element["heading"], "text")
        if kind == "Title":
            if last_title is not None and last_title["text"] not in element["heading"].split(" > ")[:-1]:
                orphans.append(last_title)
            last_title = element
            continue
        last_title = None
        if kind == "Table":
            table = _Section(element["heading"], "table")
            table.add(element["text"], element["page"])
            yield table
            continue
        for orphan in orphans:
            current.add(orphan["text"], orphan["page"])
        orphans.clear()
        current.add(element["text"], element["page"])
    if current.text:
        yield current
    orphans += [last_title] if last_title is not None else []
    if orphans:
        tail = _Section(orphans[0]["heading"].rpartition(" > ")[0], "text")
        for orphan in orphans:
            tail.add(orphan["text"], orphan["page"])
        yield tail
