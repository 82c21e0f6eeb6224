"""The injection rail's first stage: hashed word n-grams and the heuristic features, logistic regression, no
transformer pass.

A user message that this model scores at or above its threshold is blocked at once; every other message goes on to
the embedding classifier (guardrails/injection.py). The threshold is calibrated above every benign row of the
training data (questions, NotInject prompts, document sentences), so the stage only takes the attacks it is sure
of and the embedding classifier still decides everything else. It pays on long jailbreak prompts: MiniLM over
their 256 pieces costs 40-75 ms on this project's 2-core CPU, this stage about a millisecond.

Features: lower-cased word unigrams and bigrams of the text as `obfuscation.reveal` reads it, hashed (CRC-32, which
is stable across processes, unlike `hash`) into DIM buckets, log counts, L2-normalised; then the heuristic feature
vector of `injection.features`. Hashing rather than a vocabulary keeps the model one array (no pickle) and makes
unseen words cost nothing. Trained by `guardrails/train_injection.py`, shipped as `injection_fast.npz`.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

DEFAULT_FAST_MODEL = Path(__file__).with_name("injection_fast.npz")
DIM = 1 << 17  # buckets; collisions among ~40k distinct n-grams of the training data are rare at this size
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def hashed(revealed: str, dim: int = DIM) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, values) of one revealed text: log counts of its word uni- and bigrams, L2-normalised, in
    `dim` buckets (a power of two; the harmful-content rail uses fewer)."""
    words = _WORD.findall(revealed.lower())
    counts: dict[int, int] = {}
    for gram in (*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))):
        bucket = zlib.crc32(gram.encode("utf-8")) & (dim - 1)
        counts[bucket] = counts.get(bucket, 0) + 1
    index = np.fromiter(counts, dtype=np.int64, count=len(counts))
    values = np.log1p(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    norm = float(np.linalg.norm(values))
    return index, values / norm if norm else values


def design(revealed: Sequence[str], feats: np.ndarray):
    """The sparse design matrix [hashed n-grams ‖ heuristic features] for training (scipy CSR)."""
    from scipy import sparse

    data, indices, indptr = [], [], [0]
    for text, row in zip(revealed, feats):
        index, values = hashed(text)
        extra = np.nonzero(row)[0]
        indices += [*index.tolist(), *(DIM + extra).tolist()]
        data += [*values.tolist(), *row[extra].tolist()]
        indptr.append(len(indices))
    return sparse.csr_matrix((np.asarray(data, np.float32), indices, indptr), shape=(len(indptr) - 1, DIM + feats.shape[1]))


class FastInjection:
    """`score(revealed, feats)`: attack probability; `sure(...)`: at or above the calibrated threshold."""

    def __init__(self, weights: np.ndarray, bias: float, threshold: float, n_features: int, meta: dict | None = None) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias, self.threshold, self.n_features = float(bias), float(threshold), int(n_features)
        self.meta = meta or {}
        if len(self.weights) != DIM + self.n_features:
            raise ValueError(f"fast injection model has {len(self.weights)} weights, expected {DIM + self.n_features}")

    def score(self, revealed: str, feats: np.ndarray) -> float:
        index, values = hashed(revealed)
        z = float(values @ self.weights[index]) + float(feats @ self.weights[DIM:]) + self.bias
        return 1.0 / (1.0 + float(np.exp(-np.clip(z, -30.0, 30.0))))

    def sure(self, revealed: str, feats: np.ndarray) -> tuple[bool, float]:
        p = self.score(revealed, feats)
        return p >= self.threshold, p

    @classmethod
    def fit(cls, revealed: Sequence[str], feats: np.ndarray, labels: np.ndarray, c: float = 16.0) -> "FastInjection":
        """Class-balanced L2 logistic regression (scikit-learn, training only); threshold left at 1 (never sure)
        until `calibrate` sets it."""
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
        model.fit(design(revealed, feats), labels)
        return cls(model.coef_[0], float(model.intercept_[0]), 1.0, feats.shape[1])

    def scores(self, revealed: Sequence[str], feats: np.ndarray) -> np.ndarray:
        return np.array([self.score(t, f) for t, f in zip(revealed, feats)])

    def save(self, path: Path, feature_names: Sequence[str]) -> None:
        np.savez(path, weights=self.weights, bias=np.float64(self.bias), threshold=np.float64(self.threshold),
                 dim=np.int64(DIM), feature_names=np.array(list(feature_names)),
                 meta=np.str_(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: Path, feature_names: Sequence[str]) -> "FastInjection":
        with np.load(path, allow_pickle=False) as data:
            if int(data["dim"]) != DIM or tuple(str(n) for n in data["feature_names"]) != tuple(feature_names):
                raise ValueError(f"{path}: trained with other hashing or heuristic features; retrain it "
                                 "(python -m guardrails.train_injection)")
            return cls(data["weights"], float(data["bias"]), float(data["threshold"]), len(feature_names),
                       json.loads(str(data["meta"])))


def sure_threshold(benign_scores: np.ndarray, margin: float = 1e-3) -> float:
    """Just above the highest benign score (at least 0.5): the stage blocks nothing that looks like training's benign."""
    top = float(benign_scores.max()) if len(benign_scores) else 0.0
    return float(min(max(top + margin, 0.5), 1.0))
