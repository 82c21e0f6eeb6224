"""Off-domain detection: is a message close enough to one of the allowed topics?

Each topic is a short description with example terms ("employee benefits: health, dental, vision"); the
description and each "head: term" pair become anchor vectors. A message's score is its highest cosine
similarity to any anchor; below the threshold it is off-domain and the caller answers with the scope message.
The threshold depends on the embedder (bench/guardrails.py measures it for MiniLM on the Contoso questions
and on banking questions, which are off-domain for an HR assistant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from guardrails.verdict import RailResult


def anchors(topics: Sequence[str]) -> tuple[list[str], list[int]]:
    """Anchor texts and, for each, the index of its topic."""
    texts, owner = [], []
    for i, topic in enumerate(topics):
        texts.append(topic)
        owner.append(i)
        head, _, terms = topic.partition(":")
        for term in (t.strip() for t in terms.split(",")):
            if term:
                texts.append(f"{head.strip()}: {term}")
                owner.append(i)
    return texts, owner


@dataclass(frozen=True)
class TopicScore:
    similarity: float
    topic: str | None


class TopicRail:
    def __init__(self, embedder, topics: Sequence[str], threshold: float) -> None:
        self.embedder = embedder
        self.topics = list(topics)
        self.threshold = threshold
        self._texts, self._owner = anchors(self.topics)
        self._vectors: np.ndarray | None = None

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:  # embedded once, on first use
            self._vectors = self.embedder.embed(self._texts) if self._texts else np.zeros((0, 1), np.float32)
        return self._vectors

    def score(self, text: str, vector: np.ndarray | None = None) -> TopicScore:
        if not self.topics:
            return TopicScore(1.0, None)
        v = self.embedder.embed([text])[0] if vector is None else vector
        sims = self.vectors @ v
        best = int(np.argmax(sims))
        return TopicScore(float(sims[best]), self.topics[self._owner[best]])

    def check(self, text: str, vector: np.ndarray | None = None) -> RailResult:
        found = self.score(text, vector)
        if found.similarity < self.threshold:
            return RailResult("topic", True, "replace", found.similarity, "off-domain")
        return RailResult.passed("topic", found.similarity, "in-domain")
