"""RAFT training examples (Zhang et al. 2024): a question, its oracle chunk and hard-negative distractors.

Distractors are the chunks our own retriever ranks highest for the question (what the model will
really see in chat), never the oracle and never a chunk that also contains the quoted fact; the
passages keep the retriever's order, as chat shows them. In a
fraction of examples the oracle is left out and the target is our refusal: the model should say the
documents do not answer rather than answer from memory. The prompt is `assistant.prompt.render`,
the exact text the chat runtime sends, so what is trained is what is served: with page expansion on
(`chat.expand_pages`) each passage is the whole page around its chunk, as chat serves it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from assistant import prompt
from ingestion.docstore import ChunkRow
from ingestion.page_expansion import PageExpander, merge, window
from ingestion.retriever import Retriever


@dataclass
class QaPair:
    id: str
    question: str
    answer: str  # the short final answer (a verbatim quote unless a trusted teacher wrote it)
    quote: str  # the chunk sentence that supports it, verbatim
    chunk_id: int
    collection: str
    document: str
    document_sha256: str
    teacher: str
    answer_source: str  # "quote" or "teacher"
    scores: dict[str, Any] = field(default_factory=dict)


def unit(by: str, document: str, chunk_id: int) -> str:
    """The split's key for a chunk: its document (by "document") or the chunk itself (by "chunk")."""
    return document if by == "document" else f"{document}#{chunk_id}"


def split_by_chunk(pairs: list[QaPair], val_fraction: float, seed: int) -> dict[str, str]:
    """unit("chunk", ...) -> "train" | "val": whole chunks (all their questions) go to validation until it
    holds `val_fraction` of the pairs. Every document keeps chunks in training, so validation asks new
    questions about the documents the adapter learned (what users and the golden sets do); split by
    document, six Contoso PDFs put the handbook and the role library wholly in validation."""
    per_chunk: dict[str, int] = defaultdict(int)
    for pair in pairs:
        per_chunk[unit("chunk", pair.document, pair.chunk_id)] += 1
    units = sorted(per_chunk)
    random.Random(seed).shuffle(units)
    split = {u: "train" for u in units}
    target, in_val = val_fraction * len(pairs), 0
    for key in units:
        if in_val >= target or len(units) - sum(v == "val" for v in split.values()) <= 1:
            break
        split[key] = "val"
        in_val += per_chunk[key]
    return split


def split_by_document(pairs: list[QaPair], val_fraction: float, seed: int) -> dict[str, str]:
    """document -> "train" | "val": whole documents go to validation until it holds `val_fraction`
    of the pairs, so no chunk (and no document) is in both splits."""
    per_doc: dict[str, int] = defaultdict(int)
    for pair in pairs:
        per_doc[pair.document] += 1
    documents = sorted(per_doc)
    random.Random(seed).shuffle(documents)
    split = {d: "train" for d in documents}
    target = val_fraction * len(pairs)
    in_val = 0
    for document in documents:
        # A document that would overshoot the share by half is skipped (documents differ in size
        # by 10x); at least one document stays in training.
        if in_val >= target or sum(v == "train" for v in split.values()) <= 1:
            break
        if in_val + per_doc[document] <= 1.5 * target:
            split[document] = "val"
            in_val += per_doc[document]
    if target and in_val == 0 and len(documents) > 1:  # every document is large: the smallest goes
        split[min(documents, key=lambda d: per_doc[d])] = "val"
    return split


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() in " ".join(b.split()).lower()


def build_examples(
    pairs: list[QaPair],
    chunks: dict[int, ChunkRow],
    retriever: Retriever,
    split: dict[str, str],
    distractors: int,
    oracle_drop_fraction: float,
    seed: int,
    redact: Callable[[str], str] = lambda text: text,
    by: str = "document",
    pages: PageExpander | None = None,
    units: int = 0,
    room_chars: Callable[[str], int] | None = None,
    extract: Callable[[str, str], str | None] | None = None,
) -> list[dict[str, Any]]:
    """`split` keys are `unit(by, ...)`. By chunk, a chunk no question was asked about may be a distractor
    in either split; a validation oracle never appears in a training prompt (nor the reverse). With `pages`
    and `units` > 0 the prompt holds `units` pages as chat serves them (the oracle's among them unless dropped),
    each without the chunks of the other split and within `room_chars(question)` characters, the room chat's
    window leaves a page. With `extract` (question, oracle passage text -> answer or None) the target is what it
    returns instead of the pair's quoted answer (`finetune.extractive_target`)."""
    rng = random.Random(seed)

    def side_of(document: str, chunk_id: int, default: str | None = None) -> str | None:
        return split.get(unit(by, document, chunk_id), default if by == "chunk" else None)

    # Exactly the configured share of each split loses its oracle (not a coin flip per example).
    dropped: set[str] = set()
    for side in ("train", "val"):
        ids = [p.id for p in pairs if side_of(p.document, p.chunk_id) == side]
        dropped |= set(rng.sample(ids, round(oracle_drop_fraction * len(ids))))
    results = retriever.search_many(
        [p.question for p in pairs], k=distractors + 12, collections=sorted({p.collection for p in pairs}) or None
    )
    examples = []
    for pair, hits in zip(pairs, results):
        side = side_of(pair.document, pair.chunk_id)
        negatives = [
            h.chunk_id for h in hits
            if h.chunk_id != pair.chunk_id
            and h.chunk_id in chunks  # excluded documents never appear
            and side_of(h.document, h.chunk_id, side) == side  # a validation chunk never appears in training prompts
            and not _same_text(pair.quote, h.text)  # overlapping chunks can hold the fact too
        ][:distractors]
        drop_oracle = pair.id in dropped
        # Served order: the passages as the retriever ranked them (chat shows them best first), the oracle at
        # its own rank; an oracle the retriever missed goes to a random place.
        rank = {h.chunk_id: n for n, h in enumerate(hits)}
        context = sorted(negatives, key=rank.__getitem__)
        if not drop_oracle:
            at = sum(rank[c] < rank[pair.chunk_id] for c in context) if pair.chunk_id in rank else rng.randint(0, len(context))
            context.insert(at, pair.chunk_id)
        if pages is not None and units:
            def allowed(row: ChunkRow, side=side) -> bool:
                return row.id in chunks and side_of(row.document, row.id, side) == side

            oracle = None if drop_oracle else pair.chunk_id
            # Every hit may lend its page, not only the first `distractors`: those are often the oracle's own page.
            pool = [h.chunk_id for h in hits if h.chunk_id in chunks and (h.chunk_id != pair.chunk_id or oracle)]
            room = room_chars(redact(pair.question)) if room_chars else None
            docs, passages = page_passages(pool, oracle, pages, units, allowed, pair.quote, redact, room)
            context = [ids[0] for ids in passages]  # the chunk each passage was built around
            drop_oracle = drop_oracle or oracle not in context  # a split hole left the oracle's page empty
        else:
            docs = [prompt.PromptDoc.of(chunks[c], redact) for c in context]
            passages = [[c] for c in context]
        question = redact(pair.question)
        source = pair.answer_source
        if drop_oracle:
            target, position = prompt.REFUSAL, None
        else:
            position = context.index(pair.chunk_id) + 1
            answer = extract(question, docs[position - 1].text) if extract else None
            source = "extract" if answer else source
            target = f"{answer or redact(pair.answer)} [{position}]"
        examples.append({
            "id": pair.id,
            "split": side,
            "format_version": prompt.FORMAT_VERSION,
            "prompt": prompt.render(docs, question),
            "completion": prompt.completion(target),
            "question": question,
            "answer": target,
            "reasoning": f"##begin_quote##{redact(pair.quote)}##end_quote## {target}",
            "oracle_in_context": not drop_oracle,
            "oracle_position": position,
            "context_chunk_ids": context,
            "passage_chunk_ids": passages,  # every chunk each passage holds (one each without page expansion)
            "oracle_chunk_id": pair.chunk_id,
            "distractor_chunk_ids": negatives,
            "collection": pair.collection,
            "document": pair.document,
            "document_sha256": pair.document_sha256,
            "context_documents": sorted({chunks[c].document for c in context}),
            "teacher": pair.teacher,
            "answer_source": source,
            "scores": pair.scores,
        })
    return examples


def served_room_chars(context_window_tokens: int, max_new_tokens: int, question: str) -> int:
    """The characters chat's window leaves a page for `question` (ChatService._expand: 3 per token of the room after
    the answer's cap), the question's tokens taken as 3 characters each: whatever counts tokens here need not be the
    served model, and a smaller page only ever fits."""
    return 3 * (context_window_tokens - max_new_tokens) - len(prompt.render([], question))


def page_passages(context: list[int], oracle: int | None, pages: PageExpander, units: int,
                  allowed: Callable[[ChunkRow], bool], quote: str, redact: Callable[[str], str],
                  room: int | None = None) -> tuple[list[prompt.PromptDoc], list[list[int]]]:
    """The first `units` distinct pages of `context` (served order), the oracle's page always among them when
    `oracle` is given, each cut to `room` characters at most; a distractor page holding the quoted fact is
    skipped. Returns the passages and, per passage, its chunk ids (the chunk it was built around first)."""
    found: list[tuple[int, list[ChunkRow]]] = []
    seen: set[tuple] = set()
    for cid in ([oracle] if oracle is not None else []) + [c for c in context if c != oracle]:
        rows = [r for r in pages.docstore.unit_chunks(cid) if allowed(r)]
        mine = next((r for r in rows if r.id == cid), None)
        if mine is None:
            continue
        key = (mine.document_id, mine.page)  # one window per document without pages, as chat
        if key in seen:
            continue
        kept = window(rows, cid, pages.cap(mine.page, room))
        if cid != oracle and any(_same_text(quote, r.text) for r in kept):
            continue  # it answers the question too: not a distractor
        seen.add(key)
        found.append((mine, kept))
        if len(found) == units:
            break
    order = {c: n for n, c in enumerate(context)}
    found.sort(key=lambda item: order.get(item[0].id, -1))  # served order; an oracle the retriever missed first
    docs = [prompt.PromptDoc(mine.document, mine.page, rows[0].heading, redact(merge(rows))) for mine, rows in found]
    return docs, [[mine.id, *(r.id for r in rows if r.id != mine.id)] for mine, rows in found]
