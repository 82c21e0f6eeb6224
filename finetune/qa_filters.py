"""Fact selection and the quality filters every synthetic question passes before it may train.

Each filter is a pure function over text (and, for the embedding ones, vectors) so it can be
tested on crafted cases; the synth job applies them in order and reports each acceptance rate.
Sentences are split with a regex rather than NLTK's punkt, whose data would need a download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*")
_QUESTION_START = re.compile(
    r"^(what|which|who|whom|whose|when|where|why|how|is|are|am|was|were|do|does|did|can|could|should|shall|will|"
    r"would|may|must|has|have|had|if|under|in|for|to|at|on|after|before|during)\b",
    re.IGNORECASE,
)
# Function words nearly every English question has; a question with none is taken as another language.
_ENGLISH = frozenset(
    "the a an of to in for on at by is are was do does did what how when where who which why can could should "
    "i my me we our you your it its and or with be if after before much many long there this that".split()
)


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def is_prose(sentence: str) -> bool:
    """A statement, not a heading or a table fragment: it ends with a stop and is mostly letters."""
    return sentence[-1] in ".!?" and sum(c.isalpha() for c in sentence) >= 0.6 * len(sentence)


_ANAPHORA = ("this ", "that ", "these ", "those ", "it ", "they ", "such ", "however", "also", "in addition")


def answer_passage(chunk_text: str, fact: str, following: int) -> str:
    """The fact sentence with the `following` sentences after it, verbatim from the chunk; a fact
    that leans on the sentence before ("This means ...") brings that one too. Stops at a sentence
    that is not prose (a heading or table fragment)."""
    parts = sentences(chunk_text)
    if fact not in parts:
        return fact
    at = parts.index(fact)
    start = at - 1 if at > 0 and fact.lower().startswith(_ANAPHORA) else at
    picked = parts[start : at + 1]
    for sentence in parts[at + 1 : at + 1 + following]:
        if not is_prose(sentence):
            break
        picked.append(sentence)
    return " ".join(picked)


def fact_sentences(chunk_text: str, min_words: int, max_words: int, limit: int) -> list[str]:
    """Up to `limit` sentences worth asking about: long enough to state something, not a heading
    or a table fragment; the most word-rich first, so a chunk's main statements are used."""
    picked = []
    for sentence in sentences(chunk_text):
        if min_words <= len(words(sentence)) <= max_words and is_prose(sentence):
            picked.append(sentence)
    picked.sort(key=lambda s: -len(set(words(s))))
    return picked[:limit]


@dataclass
class FilterResult:
    ok: bool
    reason: str = ""
    score: float | None = None


def sanity(question: str, min_words: int, max_words: int) -> FilterResult:
    """Length and language: a single English-looking question of reasonable length."""
    n = len(words(question))
    if not question.endswith("?"):
        return FilterResult(False, "not a question (no '?')")
    if question.count("?") > 1:
        return FilterResult(False, "several questions")
    if not min_words <= n <= max_words:
        return FilterResult(False, f"{n} words (allowed {min_words}-{max_words})", float(n))
    ascii_letters = sum(c.isascii() and c.isalpha() for c in question)
    letters = sum(c.isalpha() for c in question)
    if letters == 0 or ascii_letters / letters < 0.95 or not _ENGLISH & set(words(question)):
        return FilterResult(False, "not English-looking text")
    if not _QUESTION_START.match(question):
        return FilterResult(False, "does not start like a question")
    return FilterResult(True, score=float(n))


def longest_shared_run(question: str, chunk: str) -> int:
    """Length, in words, of the longest word sequence the question shares with the chunk."""
    q, c = words(question), words(chunk)
    best = 0
    previous = [0] * (len(c) + 1)
    for i in range(1, len(q) + 1):
        current = [0] * (len(c) + 1)
        for j in range(1, len(c) + 1):
            if q[i - 1] == c[j - 1]:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def not_a_copy(question: str, chunk: str, max_overlap: float) -> FilterResult:
    """A question that repeats most of a chunk sentence teaches retrieval by string match, not reading."""
    n = max(len(words(question)), 1)
    overlap = longest_shared_run(question, chunk) / n
    if overlap > max_overlap:
        return FilterResult(False, f"copies the chunk ({overlap:.0%} of its words in one run)", overlap)
    return FilterResult(True, score=overlap)


def grounded(answer: str, chunk: str, min_recall: float) -> FilterResult:
    """Share of the answer's words found in the chunk (a verbatim quote scores 1.0)."""
    answer_words = words(answer)
    if not answer_words:
        return FilterResult(False, "empty answer", 0.0)
    chunk_words = set(words(chunk))
    recall = sum(w in chunk_words for w in answer_words) / len(answer_words)
    if recall < min_recall:
        return FilterResult(False, f"answer words in the chunk {recall:.0%} < {min_recall:.0%}", recall)
    return FilterResult(True, score=recall)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def cosine_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of `a` with the same row of `b`."""
    return np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def near_duplicates(vectors: np.ndarray, threshold: float) -> list[int | None]:
    """For each row, the index of an earlier kept row it duplicates (cosine >= threshold), else None."""
    kept: list[int] = []
    duplicate_of: list[int | None] = []
    sims = cosine_rows(vectors, vectors) if len(vectors) else np.zeros((0, 0))
    for i in range(len(vectors)):
        match = next((j for j in kept if sims[i, j] >= threshold), None)
        duplicate_of.append(match)
        if match is None:
            kept.append(i)
    return duplicate_of


@dataclass
class FilterTally:
    """Counts per filter in the order applied: how many entered and how many passed."""

    entered: dict[str, int] = field(default_factory=dict)
    passed: dict[str, int] = field(default_factory=dict)

    def record(self, name: str, ok: bool) -> None:
        self.entered[name] = self.entered.get(name, 0) + 1
        self.passed[name] = self.passed.get(name, 0) + int(ok)

    def rows(self) -> list[dict]:
        return [
            {"filter": n, "entered": e, "passed": self.passed.get(n, 0),
             "acceptance": round(self.passed.get(n, 0) / e, 3) if e else None}
            for n, e in self.entered.items()
        ]
