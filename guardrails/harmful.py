"""The harmful-content rail: requests for weapons, self-harm methods, malware, fraud, harassment and the like
(input), and toxic or harmful answers (output), plain or wrapped in role play or optimised gibberish.

The score is a logistic regression over
- the sentence vector of the text's readable part (`gibberish.split`: an optimised suffix cut off), from the
  project's MiniLM embedder (the same pass the injection rail uses when nothing was cut);
- hashed word uni- and bigrams of the readable part (DIM buckets, CRC-32, log counts, L2-normalised);
- the gibberish features of the whole text and the offensive-language probability of `profanity_check`
  (alt-profanity-check, a maintained library that ships its model: insults and slurs it knows better than our
  few hundred rows do).
With the MiniLM, a fine-tuned scorer (guardrails/harmful_encoder.py: the MiniLM itself tuned with LoRA on the same
rows) replaces that score for messages: it transfers far better to requests of another benchmark. The regression
below scores answers (HarmfulRail says why), and messages with other embedders or `guardrails.harmful_encoder: off`.
Trained by `guardrails/train_harmful.py` (grouped cross-validation, thresholds from benign out-of-fold scores),
shipped as `harmful_model.npz` with two weight sets: "full" (needs the MiniLM it was trained with) and "sparse"
(no vector: used with any other embedder, e.g. the fake one in tests). A text is refused at or above the input
threshold; an answer is replaced at or above the output threshold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from guardrails import fast_injection, gibberish
from guardrails.harmful_encoder import message_scores
from guardrails.obfuscation import reveal

DEFAULT_HARMFUL_MODEL = Path(__file__).with_name("harmful_model.npz")
DIM = 1 << 15  # hash buckets: the training data has ~15k distinct n-grams; float16 weights keep the file ~70 KB
EXTRA_NAMES = (*gibberish.FEATURE_NAMES, "offensive")


def hashed(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(bucket indices, values): the injection first stage's hashed word uni- and bigrams, in this rail's DIM buckets."""
    return fast_injection.hashed(text, DIM)


def offensive(texts: Sequence[str]) -> np.ndarray:
    """alt-profanity-check's probability that each text is offensive language (0 when the library is missing)."""
    if not texts:
        return np.zeros(0, np.float32)
    try:
        from profanity_check import predict_prob
    except ImportError:  # the pin is in requirements.lock; without it the feature is silent, not an error
        return np.zeros(len(texts), np.float32)
    return np.asarray(predict_prob(list(texts)), dtype=np.float32)


@dataclass(frozen=True)
class Parts:
    """What the model reads of one text: its readable part and the extra features."""
    readable: str
    extras: np.ndarray  # EXTRA_NAMES, in order

    @property
    def suffixed(self) -> bool:
        return bool(self.extras[0])


def parts(texts: Sequence[str]) -> list[Parts]:
    """Readable parts (revealed as the injection rail reads them, gibberish cut) and extra features, batched."""
    splits = [gibberish.split(reveal(t)[0]) for t in texts]
    prof = offensive([s.readable for s in splits])
    return [Parts(s.readable, np.asarray([*s.features(), p], np.float32)) for s, p in zip(splits, prof)]


@dataclass(frozen=True)
class Weights:
    dense: np.ndarray | None  # per vector dimension; None for the sparse model
    hashed: np.ndarray  # DIM
    extras: np.ndarray  # len(EXTRA_NAMES)
    bias: float
    input_threshold: float
    output_threshold: float

    def score(self, part: Parts, vector: np.ndarray | None) -> float:
        index, values = hashed(part.readable)
        z = float(values @ self.hashed[index]) + float(part.extras @ self.extras) + self.bias
        if self.dense is not None and vector is not None:
            z += float(vector @ self.dense)
        return 1.0 / (1.0 + float(np.exp(-np.clip(z, -30.0, 30.0))))


class HarmfulClassifier:
    """The shipped weights: `full` (MiniLM vector + sparse) for `embedder_id`, `sparse` for anything else."""

    def __init__(self, full: Weights, sparse: Weights, embedder_id: str, meta: dict | None = None) -> None:
        self.full, self.sparse, self.embedder_id, self.meta = full, sparse, embedder_id, meta or {}

    def save(self, path: Path) -> None:
        arrays = {}
        for name, w in (("full", self.full), ("sparse", self.sparse)):
            if w.dense is not None:
                arrays[f"{name}_dense"] = w.dense.astype(np.float32)
            arrays[f"{name}_hashed"] = w.hashed.astype(np.float16)  # 4 significant digits: scores move < 1e-3
            arrays[f"{name}_extras"] = w.extras.astype(np.float32)
            arrays[f"{name}_scalars"] = np.array([w.bias, w.input_threshold, w.output_threshold], np.float64)
        np.savez_compressed(path, **arrays, dim=np.int64(DIM), extra_names=np.array(EXTRA_NAMES),
                            embedder_id=np.str_(self.embedder_id), meta=np.str_(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: Path) -> "HarmfulClassifier":
        with np.load(path, allow_pickle=False) as data:
            if int(data["dim"]) != DIM or tuple(str(n) for n in data["extra_names"]) != EXTRA_NAMES:
                raise ValueError(f"{path}: trained with other features; retrain it (python -m guardrails.train_harmful)")

            def weights(name: str) -> Weights:
                bias, t_in, t_out = (float(v) for v in data[f"{name}_scalars"])
                dense = data[f"{name}_dense"] if f"{name}_dense" in data else None
                return Weights(dense, data[f"{name}_hashed"].astype(np.float32), data[f"{name}_extras"], bias, t_in, t_out)

            return cls(weights("full"), weights("sparse"), str(data["embedder_id"]), json.loads(str(data["meta"])))


@dataclass(frozen=True)
class HarmfulScore:
    score: float
    threshold: float
    suffixed: bool  # a gibberish run was cut off before scoring

    @property
    def harmful(self) -> bool:
        return self.score >= self.threshold

    @property
    def reason(self) -> str:
        return "harmful request, gibberish suffix" if self.suffixed else "harmful content"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # answer -> sentences, for the per-sentence check


class HarmfulRail:
    """`score_input(text, vector_of)`: `vector_of(readable) -> vector` gives the embedder's vector (the Guard passes
    its shared pass, so a text with nothing cut costs no second embedding); `score_output(text)` the same for answers."""

    def __init__(self, classifier: HarmfulClassifier, embedder=None, input_threshold: float = 0.0,
                 output_threshold: float = 0.0, encoder=None) -> None:
        usable = embedder is not None and getattr(embedder, "id", None) == classifier.embedder_id
        self.weights = classifier.full if usable else classifier.sparse
        self.embedder = embedder if usable else None
        # harmful_encoder.HarmfulEncoder: when given, it scores messages instead of the weights. Answers keep the
        # weights: in cross-validation the encoder flagged 2 of 60 page windows of a company's own documents and 7 of
        # 53 benign advice answers (the shipped regression 0 and 4), and the regression replaced none of 501 real answers
        # of two full scorecards; a benign answer replaced is a failed answer.
        self.encoder = encoder
        self.input_threshold = input_threshold or (encoder or self.weights).input_threshold
        self.output_threshold = output_threshold or self.weights.output_threshold

    @property
    def uses_vectors(self) -> bool:
        return self.embedder is not None

    def _score(self, text: str, threshold: float, vector_of: Callable[[str], np.ndarray] | None) -> HarmfulScore:
        part = parts([text])[0]
        vector = None
        if self.embedder is not None:
            vector = vector_of(part.readable) if vector_of else self.embedder.embed([part.readable])[0]
        return HarmfulScore(self.weights.score(part, vector), threshold, part.suffixed)

    def score_input(self, text: str, vector_of: Callable[[str], np.ndarray] | None = None) -> HarmfulScore:
        if self.encoder is not None:
            part = parts([text])[0]
            score = message_scores(self.encoder.probabilities, [part.readable])[0]
            return HarmfulScore(float(score), self.input_threshold, part.suffixed)
        return self._score(text, self.input_threshold, vector_of)

    def score_output(self, text: str, vector_of: Callable[[str], np.ndarray] | None = None) -> HarmfulScore:
        return self._score(text, self.output_threshold, vector_of)


def rail_from_config(config, embedder) -> "HarmfulRail | None":
    """The rail the `guardrails` settings ask for: None when `harmful_enabled` is off or the weights file is missing
    (logged: the rail is then absent, not silently passing). The fine-tuned encoder scores when `harmful_encoder`
    allows it and it was tuned on this embedder's model; else the logistic regression."""
    import logging

    from guardrails.harmful_encoder import load_encoder

    if not config.harmful_enabled:
        return None
    path = Path(config.harmful_model) if config.harmful_model else DEFAULT_HARMFUL_MODEL
    if not path.exists():
        logging.getLogger(__name__).warning("no harmful-content model at %s: the harmful-content rail is off", path)
        return None
    encoder = None
    if config.harmful_encoder != "off":
        encoder = load_encoder(embedder, Path(config.harmful_encoder) if config.harmful_encoder else None)
    return HarmfulRail(HarmfulClassifier.load(path), embedder, config.harmful_threshold,
                       config.harmful_output_threshold, encoder)


def input_result(rail: HarmfulRail, text: str, vector_of=None):
    """The rail's RailResult for a user message (`block` at or above the input threshold)."""
    from guardrails.verdict import RailResult

    found = rail.score_input(text, vector_of)
    return RailResult("harmful", True, "block", found.score, found.reason) if found.harmful \
        else RailResult.passed("harmful", found.score)


def output_result(rail: HarmfulRail, text: str, vector_of=None):
    """The rail's RailResult for an answer (`replace` at or above the output threshold): the whole answer and each
    of its sentences, worst first, since one harmful sentence inside a long benign answer scores low on the whole.
    The served stream checks each released unit the same way (Guard.check_unit), so a scorecard's offline
    `check_output` and a streamed answer get the same verdict."""
    from guardrails.verdict import RailResult

    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    found = max((rail.score_output(part, vector_of) for part in [text, *(sentences if len(sentences) > 1 else [])]),
                key=lambda f: (f.harmful, f.score))
    return RailResult("harmful", True, "replace", found.score, "harmful or toxic answer") if found.harmful \
        else RailResult.passed("harmful", found.score)
