"""A rail's fine-tuned scorer: the project's MiniLM with a LoRA adapter and a linear head, trained end to end on the
rail's rows (the harmful-content rail: guardrails/train_harmful_encoder.py; the injection rail:
guardrails/train_injection_encoder.py).

Why not only a logistic regression over the frozen sentence vector: it separates the rows it was trained on but
transfers poorly to another benchmark's; tuning the encoder itself transferred much better (README, Measured numbers).
The adapter is small (LoRA, ~1 MB in float16) and rides on the MiniLM the deployment already has; with another
embedder (or the fake one in tests) each rail keeps its regression.

Files in a model directory: `adapter_config.json` + `adapter_model.safetensors` (peft), `head.json` (the linear
head, two thresholds, the base embedder id and the maximum token count).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

SCALE = 10.0  # the unit-normalised mean-pooled vector is scaled before the head (a cosine logit's temperature)
log = logging.getLogger(__name__)


class TunedEncoder:
    """`probabilities(texts)`: the positive-class probability of each (already revealed) text. The two thresholds are
    the rail's: input and output for the harmful rail, input and chunk for the injection rail."""

    def __init__(self, base_dir: Path, model_dir: Path) -> None:
        head = json.loads((model_dir / "head.json").read_text(encoding="utf-8"))
        self.base_dir, self.model_dir = base_dir, model_dir
        self.embedder_id = head["embedder_id"]
        self.input_threshold = float(head["input_threshold"])
        self.output_threshold = float(head["output_threshold"])
        self.max_tokens = int(head["max_tokens"])
        self._head = (head["weight"], float(head["bias"]))
        self._loaded = None  # (model, tokenizer, weight): loaded on the first score, so a Guard that never scores
        self._lock = threading.Lock()  # pays nothing; one torch pass at a time (rails run on worker threads)

    def _load(self):
        import torch
        from peft import PeftModel
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(self.base_dir), local_files_only=True)
        base = AutoModel.from_pretrained(str(self.base_dir), local_files_only=True)
        # merged once: scoring then costs one plain MiniLM pass (about 5-30 ms a text on 2 cores)
        model = PeftModel.from_pretrained(base, str(self.model_dir)).merge_and_unload().eval()
        return model, tokenizer, torch.tensor(self._head[0], dtype=torch.float32)

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            model, tokenizer, weight = self._loaded
            return probabilities_of(model, tokenizer, texts, self.max_tokens, weight, self._head[1], batch_size)


def probabilities_of(model, tokenizer, texts: Sequence[str], max_tokens: int, weight, bias,
                     batch_size: int = 32) -> np.ndarray:
    """The probability of each text, in batches (no gradients: the caller scores, it does not train)."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            logits = logits_of(model, tokenizer, list(texts[start:start + batch_size]), max_tokens, weight, float(bias))
            out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def logits_of(model, tokenizer, texts: list[str], max_tokens: int, weight, bias):
    """Mean-pooled, unit-normalised, scaled MiniLM vector -> one logit per text (training and serving share it)."""
    import torch

    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0), dim=-1)
    return pooled @ weight * SCALE + bias


def save_head(model_dir: Path, weight: np.ndarray, bias: float, embedder_id: str, max_tokens: int,
              input_threshold: float, output_threshold: float, meta: dict) -> None:
    head = {"embedder_id": embedder_id, "max_tokens": max_tokens, "input_threshold": input_threshold,
            "output_threshold": output_threshold, "bias": bias, "weight": [round(float(v), 6) for v in weight],
            "meta": meta}
    (model_dir / "head.json").write_text(json.dumps(head, indent=1) + "\n", encoding="utf-8")


def load_encoder(embedder, model_dir: Path | None, default_dir: Path, setting: str,
                 recipe: str) -> TunedEncoder | None:
    """The fine-tuned scorer for this embedder, or None (logged) when it was trained on another base model, the
    files are missing, or the embedder has no model directory (the fake one). A `model_dir` named in the settings
    (`setting`) must hold a model: an error, not a silent fallback."""
    if model_dir is not None and not (model_dir / "head.json").exists():
        raise FileNotFoundError(f"{setting}: no head.json in {model_dir} (write one with python -m {recipe} --out DIR)")
    model_dir = model_dir or default_dir
    head = model_dir / "head.json"
    base_dir = getattr(embedder, "model_dir", None)
    if base_dir is None or not head.exists():
        return None
    wanted = json.loads(head.read_text(encoding="utf-8"))["embedder_id"]
    if getattr(embedder, "id", None) != wanted:
        log.info("the encoder at %s was tuned on %s, not %s: using the regression", model_dir, wanted,
                 getattr(embedder, "id", None))
        return None
    return TunedEncoder(Path(base_dir), model_dir)
