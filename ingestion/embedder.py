"""Text embedders behind one protocol: a sentence-transformers model, and a deterministic fake.

Every embedder reports its own token limit and counts tokens with its own tokenizer, so the
chunker can guarantee that nothing is silently truncated at encode time.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from assistant.integrity import IntegrityError, verify_package_dir
from assistant.settings import EmbedderSettings

log = logging.getLogger(__name__)


class EmbedderError(RuntimeError):
    """The configured embedder cannot be found or loaded."""


class Embedder(Protocol):
    id: str  # identifies model + dimension; an index refuses vectors from another id
    dim: int
    max_tokens: int  # usable text tokens per input, special tokens excluded

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised (inner product = cosine)."""
        ...


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class HashEmbedder:
    """Deterministic fake: signed feature hashing of lower-cased words and word bigrams.

    Similar texts get similar vectors, so retrieval tests mean something, and it needs no
    model files. Like a real model it only sees its first `max_tokens` tokens.
    """

    def __init__(self, dim: int = 64, max_tokens: int = 256):
        self.dim = dim
        self.max_tokens = max_tokens
        self.id = f"fake-hash-v1:{dim}"

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text)[: self.max_tokens] if w.isalnum()]
            for feature in words + [a + " " + b for a, b in zip(words, words[1:])]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


class SentenceTransformerEmbedder:
    """A local sentence-transformers model; loads lazily so cheap commands stay cheap."""

    def __init__(self, model_dir: Path, batch_size: int = 32, device: str = "cpu"):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.device = device
        self._model = None
        config = _read_json(model_dir / "config.json")
        st_config = _read_json(model_dir / "sentence_bert_config.json")
        self.dim = int(config.get("hidden_size") or config.get("dim") or 0)
        dense = model_dir / "2_Dense" / "config.json"
        if dense.exists():
            self.dim = int(_read_json(dense).get("out_features", self.dim))
        # Two special tokens ([CLS] ... [SEP]) share the model's window with the text.
        self.max_tokens = int(st_config.get("max_seq_length") or config.get("max_position_embeddings", 512)) - 2
        fingerprint = hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()[:12]
        self.id = f"sentence-transformers:{model_dir.name}:{self.dim}:{fingerprint}"

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.model_dir), device=self.device, local_files_only=True)
        return self._model

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def resolve_model_dir(model: str) -> Path:
    """A directory as given, or the model directory shipped inside an installed package."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    try:
        package = importlib.import_module(model.replace("-", "_"))
    except ImportError as exc:
        raise EmbedderError(
            f"embedder model {model!r} is neither a directory nor an installed package "
            "(models are never downloaded: give a local sentence-transformers directory)"
        ) from exc
    getter = getattr(package, "get_model_path", None)
    found = Path(getter()) if getter else Path(package.__file__).parent / "model"
    if not (found / "config.json").exists():
        raise EmbedderError(f"package {model!r} does not contain a sentence-transformers model at {found}")
    try:  # against the hashes pip recorded when it installed the package (about 0.1 s for MiniLM)
        verify_package_dir(model, found)
    except IntegrityError as exc:
        raise EmbedderError(f"refusing to load the embedder: {exc}") from None
    return found


def build_embedder(settings: EmbedderSettings, models_dir: Path | None = None) -> Embedder:
    """`models_dir`: the deployment's model cache (`Settings.models_dir`), used by openvino and auto mode unless
    `embedder.cache_dir` names another."""
    if settings.mode == "fake":
        return HashEmbedder(settings.fake_dim, settings.fake_max_tokens)
    cache_dir = settings.cache_dir or models_dir
    if settings.mode == "openvino":
        from ingestion.embedder_openvino import OpenVINOEmbedder

        if cache_dir is None:
            raise EmbedderError("embedder.mode openvino needs embedder.cache_dir (where its export is kept)")
        return OpenVINOEmbedder(resolve_model_dir(settings.model), settings.batch_size, cache_dir)
    model_dir = resolve_model_dir(settings.model)
    if settings.mode == "auto":
        fast = _openvino_or_none(settings, model_dir, cache_dir)
        if fast is not None:
            return fast
    return SentenceTransformerEmbedder(model_dir, settings.batch_size, settings.device)


def _openvino_or_none(settings: EmbedderSettings, model_dir: Path, cache_dir: Path | None) -> Embedder | None:
    """auto mode: the OpenVINO embedder, exported and compiled now so a failure falls back before the first search
    rather than during it; None (logged) where it does not apply or does not load."""
    if settings.device != "cpu" or cache_dir is None:  # a GPU runs torch; a bare call (training scripts) has no cache
        return None
    try:
        from ingestion.embedder_openvino import OpenVINOEmbedder

        fast = OpenVINOEmbedder(model_dir, settings.batch_size, cache_dir)
        fast.compiled  # noqa: B018 - exports once (seconds), then loads in ~0.2 s
        return fast
    except ImportError as exc:
        log.info("embedder: OpenVINO is not installed (%s); sentence-transformers runs %s", exc, model_dir.name)
    except EmbedderError as exc:  # another pooling layout, or a tampered export
        log.warning("embedder: %s; sentence-transformers runs it instead", exc)
    except Exception as exc:  # a model OpenVINO cannot trace or compile
        log.warning("embedder: the OpenVINO export of %s failed (%s: %s); sentence-transformers runs it instead",
                    model_dir.name, type(exc).__name__, exc)
    return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
