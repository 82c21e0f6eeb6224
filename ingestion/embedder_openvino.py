"""A mean-pooling sentence-transformers model (all-MiniLM-L6-v2) on OpenVINO: the same vectors, ~3x the texts/s.

Measured on this CPU (AMX/AVX512-BF16, 2 cores): 122 texts/s against 36 for sentence-transformers on torch, cosine
to torch's vectors >= 0.9999 (README "Measured numbers"). OpenVINO computes in bfloat16 there; the vectors still agree
to four decimals because pooling and normalisation run here in float32.

Why our own export: sentence-transformers' `backend="openvino"` goes through optimum-intel, which wants
transformers <= 5.0 (the lock has 5.23). A model whose modules are exactly Transformer -> mean Pooling -> Normalize
is all this computes (mean over the attention mask, then L2 norm, in numpy); any other layout (CLS pooling, a Dense
head) is refused with a message, so nothing silently embeds differently.

The vectors keep the torch embedder's id: an index built by either engine serves queries embedded by the other.
The IR is traced once per model into `<cache_dir>/<model>-ov-embed-v<N>/` under a file lock, staged and renamed into
place with a SHA-256 manifest that is checked on every load (as the generator's export).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from transformers import AutoTokenizer

from assistant import integrity
from assistant.runtime import openvino_export  # also switches OpenVINO telemetry off before openvino loads
from ingestion.embedder import EmbedderError, SentenceTransformerEmbedder

log = logging.getLogger(__name__)

EXPORT_VERSION = 1
_LAYOUT = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
           "sentence_transformers.models.Normalize"]


class OpenVINOEmbedder(SentenceTransformerEmbedder):
    """Same id, dimension, token limit and tokenizer as SentenceTransformerEmbedder; the encoder runs in OpenVINO."""

    def __init__(self, model_dir: Path, batch_size: int, cache_dir: Path):
        super().__init__(model_dir, batch_size, "cpu")
        _check_layout(model_dir)
        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.cache_dir = cache_dir
        self._compiled = None

    @property
    def tokenizer(self):  # the same tokenizer sentence-transformers loads, without loading torch weights
        return self._tokenizer

    @property
    def compiled(self):
        if self._compiled is None:
            import openvino as ov

            directory = ensure_exported(self.model_dir, self.cache_dir)
            self._compiled = ov.Core().compile_model(str(directory / openvino_export.MODEL_XML), "CPU")
        return self._compiled

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths together: less padding
        names = {port.get_any_name() for port in self.compiled.inputs}
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                   max_length=self.max_tokens + 2, return_tensors="np")
            hidden = self.compiled({k: v for k, v in batch.items() if k in names})[0].astype(np.float32)
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def _check_layout(model_dir: Path) -> None:
    modules = json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").is_file() else []
    pooling_file = model_dir / "1_Pooling" / "config.json"
    pooling = json.loads(pooling_file.read_text()) if pooling_file.is_file() else {}
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if [m.get("type") for m in modules] != _LAYOUT or modes != {"pooling_mode_mean_tokens"}:
        raise EmbedderError(f"the openvino embedder handles Transformer -> mean Pooling -> Normalize models only; "
                            f"{model_dir} is laid out otherwise (use embedder.mode: sentence-transformers)")


def ensure_exported(model_dir: Path, cache_dir: Path) -> Path:
    target = cache_dir / f"{model_dir.name}-ov-embed-v{EXPORT_VERSION}"
    try:
        openvino_export.export_once(target, lambda: _export(model_dir, target), "OpenVINO embedder export")
    except integrity.IntegrityError as exc:
        raise EmbedderError(f"refusing to load the embedder: {exc}; delete {target} to export it again") from None
    return target


def _export(model_dir: Path, target: Path) -> None:
    import openvino as ov
    import torch
    from transformers import AutoModel

    log.warning("exporting the embedder %s to OpenVINO at %s, once (seconds)", model_dir.name, target)
    with openvino_export.staged(target, {"model": str(model_dir)}) as staging:
        model = AutoModel.from_pretrained(str(model_dir)).eval()
        example = AutoTokenizer.from_pretrained(str(model_dir))(["a b c", "a"], padding=True, return_tensors="pt")
        with torch.no_grad(), openvino_export.quiet_tracing():  # batch 2 of unequal lengths: axes stay dynamic
            ov.save_model(ov.convert_model(model, example_input=dict(example)), staging / openvino_export.MODEL_XML,
                          compress_to_fp16=False)
