"""Drift watch: are today's questions still the kind the assistant was trained and scored on?

The reference is the training and golden questions, embedded once. Each incoming question is reduced to one
number, its cosine similarity to the nearest reference question; the reference's own numbers come from leaving
each reference question out in turn. Over the last `window` questions of a collection, a one-sided Mann-Whitney
U test (scipy) asks whether incoming questions sit farther from the reference than the reference's own questions
do; p < alpha / window raises the alert (the test is repeated at every question). Alongside: the window's mean best retrieval score, refusal rate and unanswered
share (no chunk above the threshold), the other signs that questions moved away from the documents.

Why not evidently: 0.7.16 installs without touching torch, but brings 11 packages (plotly, statsmodels, dynaconf,
watchdog and `iterative-telemetry`, a usage-reporting client) for one test that scipy gives in a line. Why a
nearest-neighbour statistic rather than per-dimension tests: 384 per-dimension KS tests need a multiple-testing
correction and miss shifts spread over many dimensions; the distance to the reference is what "unlike the
training questions" means, in one number the admin page can chart.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy.stats import mannwhitneyu

MIN_WINDOW = 10  # questions before a test is run at all
HISTORY = 240  # snapshots kept per collection for the admin page's charts


@dataclass
class Observation:
    similarity: float  # cosine to the nearest reference question
    best_score: float | None  # best dense retrieval score (None: nothing retrieved)
    refused: bool
    unanswered: bool  # refused because no chunk reached the relevance threshold


class DriftWatch:
    def __init__(self, embed: Callable[[list[str]], Any], reference: Sequence[str], window: int = 50,
                 alpha: float = 0.01, on_update: Callable[[str, dict[str, Any]], None] | None = None):
        self.embed = embed
        self.window, self.alpha = window, alpha
        self.on_update = on_update  # e.g. the Prometheus gauges
        self.reference = _unit(np.asarray(embed(list(reference)), dtype=np.float32)) if reference else None
        self.baseline = self._leave_one_out() if self.reference is not None and len(self.reference) > 1 else None
        self.recent: dict[str, deque[Observation]] = {}
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def _leave_one_out(self) -> np.ndarray:
        sims = self.reference @ self.reference.T
        np.fill_diagonal(sims, -np.inf)
        return sims.max(axis=1)

    def similarity(self, question: str) -> float:
        vector = _unit(np.asarray(self.embed([question]), dtype=np.float32))
        return float((self.reference @ vector[0]).max()) if self.reference is not None else 0.0

    def observe(self, collection: str, question: str, best_score: float | None, refused: bool,
                unanswered: bool) -> dict[str, Any]:
        """Add one question to its collection's window and return the collection's current figures."""
        obs = Observation(self.similarity(question), best_score, refused, unanswered)
        with self.lock:
            recent = self.recent.setdefault(collection, deque(maxlen=self.window))
            recent.append(obs)
            figures = self.figures_of(list(recent))
            self.history.setdefault(collection, deque(maxlen=HISTORY)).append({"at": time.time(), **figures})
        if self.on_update:
            self.on_update(collection, figures)
        return figures

    def figures_of(self, window: list[Observation]) -> dict[str, Any]:
        scores = [o.best_score for o in window if o.best_score is not None]
        p_value = None
        if self.baseline is not None and len(window) >= MIN_WINDOW:
            p_value = float(mannwhitneyu([o.similarity for o in window], self.baseline, alternative="less").pvalue)
        return {
            "questions": len(window),
            "similarity": float(np.mean([o.similarity for o in window])),
            "p_value": p_value,
            # The test runs at every question over overlapping windows: each question is in `window` tests, so
            # the alarm needs p below alpha / window (Bonferroni over the tests one window spans). At plain alpha
            # bench/drift.py saw false alarms in 6 of 20 stable runs; at alpha / window in 3 and 1 of 20.
            "alert": p_value is not None and p_value < self.alpha / self.window,
            "best_score": float(np.mean(scores)) if scores else None,
            "refusal_rate": float(np.mean([o.refused for o in window])),
            "unanswered_share": float(np.mean([o.unanswered for o in window])),
        }

    def snapshot(self) -> dict[str, Any]:
        """Per collection: the latest figures and their history (for charts), plus the reference's size."""
        with self.lock:
            return {"reference_questions": 0 if self.reference is None else int(len(self.reference)),
                    "window": self.window, "alpha": self.alpha,
                    "collections": {c: {"latest": h[-1] if h else None, "history": list(h)}
                                    for c, h in self.history.items()}}


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)
