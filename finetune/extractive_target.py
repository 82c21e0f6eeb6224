"""Extractive answer targets: the sentences of the oracle passage closest to the question, in page order.

Why this target (issue 18, lever 2). The quoted target (the teacher's fact sentence and the two after it) answers
the fact the teacher picked, which often is not what its question asks ("How many providers are in the
network?" -> "Working with these providers is an essential part ..."), and self-distilled targets copy the 270M
model's invented numbers. A target built from the question and the passage alone is always about the question and
always grounded, needs no teacher answer (every synthetic question gets one) and cites its passage. What it is
worth depends on the corpus (`bench/extractive_answers.py`, the three sentences of the served page closest to the
question against the served base+RAG answers): level on the Contoso dev set (token F1 +0.008, similarity +0.005),
well ahead on Kestrel's short factual questions (2 sentences: F1 +0.154, similarity +0.156). An adapter trained on
it on Contoso learnt to cite but not which sentences (similarity -0.081 against base+RAG), and on Kestrel's demo
data (32 examples, 16 steps) it was level with base+RAG (README, the hybrid ablation), so the default stays `quote`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from finetune import qa_filters as F


def prose_sentences(text: str, min_words: int = 4) -> list[str]:
    """The passage's sentences that read as prose: lines are split first, so a heading never joins the sentence
    under it; a fragment without a closing stop or mostly not letters (a table row) is left out, and so is one that
    does not open as a sentence does (a page window cut mid-sentence: "etwork providers may ...")."""
    found = []
    for line in text.splitlines():
        found += [s for s in F.sentences(line) if len(s.split()) >= min_words and s[0].isupper() and F.is_prose(s)]
    return found


def extract_answer(question_vector: np.ndarray, sentences: list[str], vectors: np.ndarray, k: int) -> str:
    """The `k` sentences closest to the question (cosine), joined in the passage's order; repeated sentences (a
    page that states a rule twice) count once."""
    if not sentences:
        return ""
    order = np.argsort(-F.cosine_rows(vectors, question_vector[None])[:, 0], kind="stable")
    picked: list[int] = []
    seen: set[str] = set()
    for i in order:
        key = sentences[int(i)].lower()
        if key not in seen:
            seen.add(key)
            picked.append(int(i))
        if len(picked) == k:
            break
    return " ".join(sentences[i] for i in sorted(picked))


class ExtractiveTargets:
    """Gives `build_examples` a target per (question, oracle passage text). `embed` is the collection's embedder
    (the one retrieval uses), so "closest" means what it means to the retriever."""

    def __init__(self, embed: Callable[[list[str]], Any], sentences: int):
        self.embed = embed
        self.k = sentences

    def __call__(self, question: str, passage: str) -> str | None:
        found = prose_sentences(passage)
        if not found:
            return None  # no prose on the page (a table): the caller keeps its quoted target
        vectors = np.asarray(self.embed([question, *found]), dtype=np.float32)
        return extract_answer(vectors[0], found, vectors[1:], self.k)
