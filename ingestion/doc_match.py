"""Which documents a question names: its proper nouns and numbers against each document's header.

A question such as "what drove Apple's net income in Q2 2023?" names a company and a period; the
chunk that answers it may name neither. The retriever boosts chunks of documents whose header (file
name, title, issuer, form, period; see `doc_context.py`) shares such words with the question.

Only "naming" words of the question count: capitalised words that do not start a sentence, acronyms,
and tokens with digits (years, "Q2", "10-Q"). Plain lower-case words ("employee", "plan") would tie a
question to whichever document happens to have them in its title. A word found in every document's
header names none of them and is ignored; the rest are weighted by inverse document frequency, and
the scores are scaled so the best-named document gets 1.
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import Stemmer

_STEMMER = Stemmer.Stemmer("english")
_WORD = re.compile(r"[A-Za-z0-9]+(?:[-'’][A-Za-z0-9]+)*")
_STOP = {"the", "a", "an", "of", "and", "or", "for", "in", "on", "to", "by", "with", "i", "inc", "corp", "ltd", "llc"}


def _norm(word: str) -> str:
    word = re.sub(r"['’]s$", "", word.lower())
    return _STEMMER.stemWord(word) if word.isalpha() else word


def header_tokens(text: str) -> set[str]:
    """Every normalised word of a header, file names split at '_', '-' and '.'."""
    words = _WORD.findall(re.sub(r"[_.]", " ", text))
    tokens = {_norm(w) for w in words}
    for word in words:  # "10-Q" also as "10q" and parts, so "10-Q", "10Q" and "Q" forms meet
        if "-" in word:
            tokens.add(_norm(word.replace("-", "")))
            tokens.update(_norm(p) for p in word.split("-"))
    return {t for t in tokens if len(t) > 1 and t not in _STOP}


def naming_tokens(question: str) -> set[str]:
    """The question's proper nouns, acronyms and numbers, normalised like `header_tokens`."""
    tokens: set[str] = set()
    for sentence in re.split(r"(?<=[.?!])\s+", question.strip()):
        for position, word in enumerate(_WORD.findall(sentence)):
            has_digit = any(c.isdigit() for c in word)
            capital = word[0].isupper() and (position > 0 or word[1:2].isupper() or any(c.isupper() for c in word[1:]))
            if has_digit or capital:
                tokens.add(_norm(word))
                if "-" in word:
                    tokens.add(_norm(word.replace("-", "")))
    return {t for t in tokens if len(t) > 1 and t not in _STOP}


class DocumentMatcher:
    def __init__(self, headers: dict[int, str], chunk_documents: dict[int, int]):
        """`headers`: document id -> header text; `chunk_documents`: chunk id -> document id."""
        self.chunk_documents = chunk_documents
        self.keys = {doc: header_tokens(text) for doc, text in headers.items()}
        n = len(self.keys)
        df: dict[str, int] = {}
        for tokens in self.keys.values():
            for token in tokens:
                df[token] = df.get(token, 0) + 1
        # idf with +1 smoothing; a token every document has (n > 1) names none of them
        self.idf = {t: math.log(1 + n / c) for t, c in df.items() if n == 1 or c < n}

    def document_scores(self, question: str) -> dict[int, float]:
        """Document id -> share of the best match (0 < score <= 1); empty when the question names none."""
        named = naming_tokens(question)
        if not named:
            return {}
        raw = {doc: sum(self.idf.get(t, 0.0) for t in named & keys) for doc, keys in self.keys.items()}
        best = max(raw.values(), default=0.0)
        return {doc: value / best for doc, value in raw.items() if value > 0} if best > 0 else {}

    def chunk_scores(self, question: str, chunk_ids: Iterable[int]) -> dict[int, float]:
        scores = self.document_scores(question)
        if not scores:
            return {}
        out = {}
        for chunk_id in chunk_ids:
            value = scores.get(self.chunk_documents.get(chunk_id, -1))
            if value:
                out[chunk_id] = value
        return out
