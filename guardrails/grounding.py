"""Groundedness of an answer in its retrieved context, without an LLM judge.

Per answer sentence (citations like [1] removed, refusals and sentences without content words skipped):
- facts: every number (amounts, percentages, counts, dates) and every capitalised name not at the start of
  the sentence must occur somewhere in the context;
- support: the share of the sentence's content words (lower-cased, crude suffix stemming, stop words out)
  found in one window of three consecutive context sentences is at least `sentence_min_overlap`; with an
  embedder, a cosine of at least `min_cosine` to a context window also counts as support.
A sentence is supported when its facts hold and it has support. The score is the share of supported
sentences; the answer is grounded when the score reaches `threshold`. The unsupported sentences are returned
so that a caller can show or log them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n{2,}|\n(?=\s*[-*•\d]+[.)]?\s)")
_CITATION = re.compile(r"\s*\[\d{1,2}\](?:\s*,?\s*\[\d{1,2}\])*")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d[\d,.]*%?")
# A quantity, not the digits of an identifier ("v1", "E412", "K2"): those are checked as words.
_NUMBER = re.compile(r"(?<![A-Za-z\d])\d[\d,]*(?:\.\d+)?(?![A-Za-z])")
STOP = frozenset("""a an the and or but if then than that this these those there their them they it its is are was were
be been being to of in on at by for with from as into about over under between through during before after above
below up down out off again further once here when where why how all any both each few more most other some such no
nor not only own same so too very can will just should would could may might must shall do does did doing have has
had having i me my we our you your he him his she her who whom which what whose also per via etc e.g i.e""".split())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _stem(word: str) -> str:
    word = word.lower().strip("'’-")
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in _TOKEN.findall(text) if w[0].isalpha() and w.lower() not in STOP and len(w) > 2}


def numbers(text: str) -> set[str]:
    return {m.group().replace(",", "").rstrip(".") for m in _NUMBER.finditer(text)}


def names(sentence: str) -> set[str]:
    """Capitalised words not opening the sentence (a crude named-entity check)."""
    tokens = _TOKEN.findall(sentence)
    return {t.lower() for t in tokens[1:] if t[0].isupper() and t.lower() not in STOP and len(t) > 1}


@dataclass
class GroundingResult:
    score: float  # share of checked sentences that are supported (1.0 when none needed checking)
    grounded: bool
    checked: int
    unsupported: list[str] = field(default_factory=list)


class GroundingChecker:
    def __init__(self, threshold: float = 0.5, sentence_min_overlap: float = 0.4, embedder=None,
                 min_cosine: float = 0.75, refusals: Sequence[str] = ()) -> None:
        self.threshold = threshold
        self.sentence_min_overlap = sentence_min_overlap
        self.embedder = embedder
        self.min_cosine = min_cosine
        self.refusals = [r.lower().rstrip(".") for r in refusals]

    def check(self, answer: str, contexts: Sequence[str]) -> GroundingResult:
        context = "\n".join(contexts)
        if any(r and r in answer.lower() for r in self.refusals):
            return GroundingResult(1.0, True, 0)
        claims = [s for s in sentences(_CITATION.sub("", answer)) if content_words(s)]
        if not claims:
            return GroundingResult(1.0, True, 0)
        ctx_sentences = [s for c in contexts for s in sentences(c)] or [context]
        windows = [" ".join(ctx_sentences[i:i + 3]) for i in range(max(1, len(ctx_sentences) - 2))]
        window_words = [content_words(w) for w in windows]
        ctx_lower, ctx_numbers = context.lower(), numbers(context)
        ctx_vectors = claim_vectors = None
        if self.embedder is not None:
            ctx_vectors = self.embedder.embed(windows)
            claim_vectors = self.embedder.embed(claims)
        unsupported = []
        for i, claim in enumerate(claims):
            words = content_words(claim)
            overlap = max(len(words & w) / len(words) for w in window_words)
            facts = numbers(claim) <= ctx_numbers and all(n in ctx_lower for n in names(claim))
            similar = ctx_vectors is not None and float(np.max(ctx_vectors @ claim_vectors[i])) >= self.min_cosine
            if not (facts and (overlap >= self.sentence_min_overlap or similar)):
                unsupported.append(claim)
        score = 1.0 - len(unsupported) / len(claims)
        return GroundingResult(score, score >= self.threshold, len(claims), unsupported)
