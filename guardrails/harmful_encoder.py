"""The harmful-content rail's fine-tuned scorer of messages (guardrails/tuned_encoder.py: the MiniLM tuned with LoRA
and a linear head), trained by guardrails/train_harmful_encoder.py and shipped in guardrails/harmful_encoder/.

Why: the logistic regression of harmful.py over the frozen sentence vector transfers poorly to another benchmark's
requests (JailbreakBench goals never trained on, refused on the same rows: plain 0.64, role play 0.48,
gibberish-suffixed 0.71, harmful_model.json); tuning the encoder itself refused 0.74 / 0.74 / 0.82 in the shipped
recipe's transfer run (harmful_encoder/report.json, "transfer_jbb_flag_rate"); 0.80 / 0.62 / 0.83 before the second
batch of tasks and 0.94 / 0.87 / 0.97 with it at a constant learning rate: single transfer runs differ by up to 0.2
(README, Measured numbers). Its thresholds are the input and output ones.

A message scores the higher of the whole text and its worst sentence (`message_scores`): role-play attacks state the
harmful task in one sentence among harmless framing, and the mean-pooled vector of the whole dilutes it. In four
transfer trials (trained without any JailbreakBench row, thresholds calibrated alike, which came out equal) this
refused 0.03-0.09 more of the role-play requests and no more of the benign calibration rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from guardrails.tuned_encoder import TunedEncoder, load_encoder as _load
from guardrails.tuned_encoder import logits_of, probabilities_of, save_head  # noqa: F401  (the recipe's and tests')

DEFAULT_ENCODER_DIR = Path(__file__).with_name("harmful_encoder")
HarmfulEncoder = TunedEncoder


def load_encoder(embedder, model_dir: Path | None = None) -> TunedEncoder | None:
    """The shipped (or named) harmful encoder for this embedder, or None (see tuned_encoder.load_encoder)."""
    return _load(embedder, model_dir, DEFAULT_ENCODER_DIR, "guardrails.harmful_encoder",
                 "guardrails.train_harmful_encoder")


_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")


def sentences_of(text: str) -> list[str]:
    """The sentences of a message worth scoring alone (three words or more), or none when it has only one."""
    pieces = [s for s in _SENTENCE_END.split(text.strip()) if len(s.split()) >= 3]
    return pieces if len(pieces) > 1 else []


def message_scores(score: Callable[[list[str]], np.ndarray], texts: Sequence[str]) -> np.ndarray:
    """Each message's score: the higher of the whole text's and its worst sentence's (module docstring). `score`
    maps texts to probabilities (TunedEncoder.probabilities, or a model in training); whole texts and sentences go
    in separate calls so short sentences are not padded to a long message's length."""
    texts = list(texts)
    out = np.asarray(score(texts), dtype=np.float64) if texts else np.zeros(0)
    pieces = [(j, s) for j, text in enumerate(texts) for s in sentences_of(text)]
    if pieces:
        for (j, _), p in zip(pieces, score([s for _, s in pieces])):
            out[j] = max(out[j], float(p))
    return out
