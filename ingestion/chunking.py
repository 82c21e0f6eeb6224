"""Structure-aware chunking bounded by the embedder's own token limit.

Elements are grouped into sections by (heading, page) so every chunk cites one page and
one heading; a section is packed and split with LangChain's recursive splitter measuring
length in the embedder's tokens, with overlap. Tables are kept whole when they fit the
embedder's window and otherwise split by rows with the header row repeated. Every chunk,
heading prefix included, is verified to fit the window: nothing is silently truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.settings import ChunkingSettings
from ingestion.embedder import Embedder

_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]
_MAX_CONTEXT_CHARS = 160  # a heading path longer than this is cut to its last heading


@dataclass
class Chunk:
    text: str  # the passage shown to users and cited
    context: str  # document title and heading path, prepended for embedding and BM25
    page: int | None
    heading: str
    kind: str  # "text" or "table"
    token_count: int = 0  # tokens of embed_text, as the embedder counts them

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

    def signature(self) -> str:
        """Changes whenever re-chunking would give different chunks (stored per document)."""
        return f"v1:{self.embedder.id}:{self.target}:{self.cap}:{self.overlap}:{int(self.heading_context)}"

    def chunk(self, elements: list[dict[str, Any]], title: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        for heading, page, kind, text in _sections(elements):
            context = self._context(title, heading)
            if not self.heading_context and heading and kind == "text":
                text = f"{heading.split(' > ')[-1]}\n{text}"
            budget = self.target if kind == "text" else self.cap
            budget -= self._count(context) + 1 if context else 0
            pieces = self._split_table(text, budget) if kind == "table" else self._split(text, max(budget, 8))
            chunks.extend(Chunk(p, context, page, heading, kind) for p in pieces if p.strip())
        return self._enforce_cap(chunks)

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
                part = Chunk(piece, chunk.context, chunk.page, chunk.heading, chunk.kind)
                part.token_count = self._count(part.embed_text)
                if part.token_count > self.cap:
                    raise ValueError(f"cannot fit a chunk into {self.cap} tokens")
                result.append(part)
        return result


def _sections(elements: Iterable[dict[str, Any]]) -> Iterable[tuple[str, int | None, str, str]]:
    """(heading, page, kind, text) runs: body text grouped by heading and page; tables alone."""
    heading, page, lines = "", None, []
    for element in elements:
        if element["kind"] == "Title":
            if lines:
                yield heading, page, "text", "\n".join(lines)
                lines = []
            heading, page = element["heading"], element["page"]
            continue
        if element["kind"] == "Table":
            if lines:
                yield heading, page, "text", "\n".join(lines)
                lines = []
            yield element["heading"], element["page"], "table", element["text"]
            continue
        if lines and (element["page"] != page or element["heading"] != heading):
            yield heading, page, "text", "\n".join(lines)
            lines = []
        heading, page = element["heading"], element["page"]
        lines.append(element["text"])
    if lines:
        yield heading, page, "text", "\n".join(lines)
