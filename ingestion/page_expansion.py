"""Page expansion: the best hit's whole page (in formats without pages, a page's worth of the text around it)
reaches the model instead of the retrieved chunks.

A 270M model answers better from the one page that holds the answer than from eight ranked fragments of several
pages: on 80 Contoso dev questions the best hit's page alone lifted token F1 by +0.049 [+0.017, +0.081] and
similarity by +0.032 [+0.007, +0.060] over the packed chunks, and adding the second-best page lost most of that
(README, Measured numbers). Chunks overlap (`index.overlap_tokens`), so a page is merged back into one passage with
the repeated text removed; a page longer than `max_chars` keeps the chunks nearest the hit. Markdown, HTML, DOCX
and text have no pages, and their sections are short (a median 510 characters in the Kestrel sample against 2,200
for a Contoso page), so there the unit is the hit's chunk and its neighbours across headings, up to
`max_chars_without_pages`: what a page would hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Iterator, Sequence

from ingestion.docstore import ChunkRow, DocStore

if TYPE_CHECKING:  # the retriever imports this module
    from ingestion.retriever import SearchHit

_MAX_OVERLAP_CHARS = 2000  # longest repeated text looked for between neighbours (32 tokens ≈ 150 characters)
_MIN_OVERLAP_CHARS = 16


@dataclass
class Expanded:
    hit: "SearchHit"  # the retrieved chunk the unit was found by: its citation, scores and snippet
    heading: str  # the first chunk's heading (later headings of the page are lines of `text`)
    text: str  # the unit as the model reads it


class PageExpander:
    def __init__(self, docstore: DocStore, max_chars: int, max_chars_without_pages: int | None = None):
        self.docstore = docstore
        self.max_chars = max_chars  # a page's cap, in characters of chunk text (≈ 4 per Gemma token)
        self.max_chars_without_pages = min(max_chars, max_chars_without_pages or max_chars)  # a window's, no pages

    def cap(self, page: int | None, room: int | None = None) -> int:
        """The characters a unit may hold: a page's, or a window's in a document without pages, and at most `room`
        (what the prompt's window leaves it; 200 at least, so the hit's neighbourhood still shows)."""
        cap = self.max_chars if page is not None else self.max_chars_without_pages
        return cap if room is None else min(cap, max(200, room))

    def expand(self, hits: Sequence["SearchHit"], units: int, room: int | None = None) -> list[Expanded]:
        """The units (pages, or windows without pages) of the first `units` distinct hits, best first."""
        return list(islice(self.units(hits, room), units))

    def units(self, hits: Sequence["SearchHit"], room: int | None = None) -> Iterator[Expanded]:
        """The distinct units of `hits`, best first, each within `cap(page, room)`, read from the docstore only as
        they are asked for; a hit whose chunk is gone (deleted since the search) stays as it was retrieved."""
        seen: set[tuple] = set()
        for hit in hits:
            rows = self.docstore.unit_chunks(hit.chunk_id)
            if not rows:
                yield Expanded(hit, hit.heading, hit.text)
                continue
            key = (rows[0].document_id, hit.page)  # one window per document without pages
            if key in seen:
                continue
            seen.add(key)
            kept = window(rows, hit.chunk_id, self.cap(hit.page, room))
            yield Expanded(hit, kept[0].heading, merge(kept))


def window(rows: Sequence[ChunkRow], chunk_id: int, max_chars: int) -> list[ChunkRow]:
    """The hit's chunk and its neighbours, one after, one before, in turn, while the total stays within
    `max_chars`; reading order."""
    at = next((i for i, r in enumerate(rows) if r.id == chunk_id), 0)
    first = last = at
    used = len(rows[at].text)
    grew = True
    while grew:
        grew = False
        for side in (1, -1):
            nxt = last + 1 if side > 0 else first - 1
            if 0 <= nxt < len(rows) and used + len(rows[nxt].text) <= max_chars:
                used += len(rows[nxt].text)
                first, last = min(first, nxt), max(last, nxt)
                grew = True
    return list(rows[first : last + 1])


def merge(rows: Sequence[ChunkRow]) -> str:
    """One passage from consecutive chunks: the text one chunk repeats from the end of the one before is dropped,
    and a chunk under a new heading starts with that heading on its own line."""
    text = rows[0].text.strip()
    for before, row in zip(rows, rows[1:]):
        piece = row.text.strip()
        if row.heading != before.heading:
            text += f"\n\n{row.heading}\n{piece}" if row.heading else f"\n\n{piece}"
            continue
        cut = overlap(text, piece)
        text += piece[cut:] if cut else f"\n{piece}"  # the rest keeps its own separator ("\n" or " ")
    return text


def overlap(text: str, piece: str) -> int:
    """Length of the longest prefix of `piece` that `text` ends with (0 when none or shorter than a few words:
    "e" ending one chunk and starting the next is chance, not overlap), in characters."""
    for size in range(min(len(piece), len(text), _MAX_OVERLAP_CHARS), _MIN_OVERLAP_CHARS - 1, -1):
        if text.endswith(piece[:size]):
            return size
    return 0
