"""The harmful-content rail's fine-tuned scorer of messages (guardrails/tuned_encoder.py: the MiniLM tuned with LoRA
and a linear head), trained by guardrails/train_harmful_encoder.py and shipped in guardrails/harmful_encoder/.

Why: the logistic regression of harmful.py over the frozen sentence vector transfers poorly to another benchmark's
requests (JailbreakBench goals never trained on, refused on the same rows: plain 0.58, role play 0.48,
gibberish-suffixed 0.61); tuning the encoder itself lifted that to 0.80 / 0.62 / 0.83 (harmful_encoder/report.json,
"transfer_jbb_flag_rate"; README, Measured numbers). Its thresholds are the input and output ones.
"""

from __future__ import annotations

from pathlib import Path

from guardrails.tuned_encoder import TunedEncoder, load_encoder as _load
from guardrails.tuned_encoder import logits_of, probabilities_of, save_head  # noqa: F401  (the recipe's and tests')

DEFAULT_ENCODER_DIR = Path(__file__).with_name("harmful_encoder")
HarmfulEncoder = TunedEncoder


def load_encoder(embedder, model_dir: Path | None = None) -> TunedEncoder | None:
    """The shipped (or named) harmful encoder for this embedder, or None (see tuned_encoder.load_encoder)."""
    return _load(embedder, model_dir, DEFAULT_ENCODER_DIR, "guardrails.harmful_encoder",
                 "guardrails.train_harmful_encoder")
