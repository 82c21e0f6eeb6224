"""The one prompt format: chat serving renders it, fine-tuning trains on exactly it.

Gemma 3 270M here is a base model with no chat template, so the format is ours: an instruction,
the retrieved chunks as numbered documents with name/page/heading, the earlier conversation, then
the question and an "Answer:" cue. Answers cite documents as [1], [2]. Changing anything here
changes what adapters were trained on: bump FORMAT_VERSION so the registry can tell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

FORMAT_VERSION = "ragtune-prompt-v1"

INSTRUCTION = (
    "Answer the question using only the documents below. Cite the documents you use as [1], [2]. "
    "If the documents do not contain the answer, reply exactly: {refusal}"
)
REFUSAL = "The documents do not answer this question."
# Shown when the model produced no text at all (finish_reason "empty"); never part of a later prompt.
EMPTY_ANSWER = "The model returned no answer. Try again, or choose another model version."
# Closed book: no retrieval, the model answers from its weights (what a LoRA learned from the
# documents). Evaluations compare it with the retrieval format; chat uses it when retrieval is off.
CLOSED_BOOK_INSTRUCTION = (
    "Answer the question about the organisation's documents from what you have learned. "
    "If you do not know, reply exactly: {refusal}"
)
ANSWER_CUE = "Answer:"
# A base model happily writes the next "Question:" (or a second "Answer:") itself; these end the answer there.
STOP_SEQUENCES = ["\nQuestion:", "\nAnswer:", "\nUser:", "\nDocuments:", "\n\n\n"]

_CITATION = re.compile(r"\[(\d{1,2})\]")


@dataclass
class PromptDoc:
    document: str  # file name as cited
    page: int | None
    heading: str
    text: str

    @classmethod
    def of(cls, passage, redact: Callable[[str], str] = lambda text: text) -> "PromptDoc":
        """From a search hit or a docstore chunk: chat and training build documents the same way."""
        return cls(passage.document, passage.page, passage.heading, redact(passage.text))


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    content: str


def doc_header(number: int, doc: PromptDoc) -> str:
    parts = [doc.document]
    if doc.page is not None:
        parts.append(f"page {doc.page}")
    if doc.heading:
        parts.append(doc.heading)
    return f"[{number}] " + ", ".join(parts)


def render(docs: Sequence[PromptDoc], question: str, history: Sequence[Turn] = ()) -> str:
    """The full prompt; the model's completion follows the final "Answer:" (after one space)."""
    lines = [INSTRUCTION.format(refusal=REFUSAL), "", "Documents:"]
    if not docs:
        lines.append("(none)")
    for number, doc in enumerate(docs, start=1):
        lines += [doc_header(number, doc), doc.text.strip(), ""]
    lines += _conversation(history)
    lines += [f"Question: {' '.join(question.split())}", ANSWER_CUE]
    return "\n".join(lines)


def _conversation(history: Sequence[Turn]) -> list[str]:
    if not history:
        return []
    said = [f"{'User' if t.role == 'user' else 'Assistant'}: {' '.join(t.content.split())}" for t in history]
    return ["Conversation:", *said, ""]


def render_closed_book(question: str, history: Sequence[Turn] = ()) -> str:
    """The prompt without documents: the same conversation and cue, a different instruction."""
    lines = [CLOSED_BOOK_INSTRUCTION.format(refusal=REFUSAL), ""]
    lines += _conversation(history)
    lines += [f"Question: {' '.join(question.split())}", ANSWER_CUE]
    return "\n".join(lines)


def completion(answer: str) -> str:
    """What a training target looks like after the prompt (the leading space the cue expects)."""
    return " " + answer.strip()


def pack(
    docs: Sequence[PromptDoc],
    question: str,
    history: Sequence[Turn],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> tuple[list[PromptDoc], list[Turn]]:
    """Keep the best-scored documents (given best first) and the latest turns that fit `budget_tokens`.

    The question always stays; then documents in score order (a document that does not fit is skipped
    and a smaller later one may still fit); then history from the newest turn back.
    """
    used = count_tokens(render([], question))
    kept: list[PromptDoc] = []
    for doc in docs:
        cost = count_tokens(doc_header(len(kept) + 1, doc) + "\n" + doc.text.strip() + "\n") + 1
        if used + cost <= budget_tokens:
            kept.append(doc)
            used += cost
    turns: list[Turn] = []
    for turn in reversed(history):
        cost = count_tokens(f"User: {turn.content}\n") + 1
        if used + cost > budget_tokens:
            break
        turns.insert(0, turn)
        used += cost
    return kept, turns


def cited_numbers(answer: str, available: int) -> list[int]:
    """Document numbers the answer cites, in first-cited order, ignoring numbers out of range."""
    seen: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= available and number not in seen:
            seen.append(number)
    return seen


def is_refusal(answer: str) -> bool:
    return REFUSAL.lower().rstrip(".") in answer.lower()
