"""Contextual person-name tagger: a small head over MiniLM token embeddings, gated by the hashed tagger.

The project's embedder (all-MiniLM-L6-v2) gives a contextual vector per word piece; a word's vector is that of
its first piece. A logistic-regression head scores each word of `guardrails.pii_names.tokenize` over
[first-piece vector (384) ‖ a few hand features of pii_names (case, sentence start, honorific, gazetteers)].
Spans come from the same `name_runs` as the hashed-feature tagger, so `ContextNameTagger` is a drop-in for
`pii_names.NameTagger` (`spans`, `token_scores`).

Long texts are cut into windows of WINDOW_PIECES pieces that overlap by STRIDE_PIECES; a piece takes its vector
from the window where it is farthest from an edge (most context on both sides).

`GatedNameTagger` is what the detector uses: the cheap hashed tagger (pii_names) is a gate, and only a text in
which some word scores at least `gate` with it (the hashed tagger's cross-validated recall there is >= 0.97) gets
the MiniLM pass and the contextual verdict; most chat messages hold no candidate and cost no forward pass.

Weights live in `pii_context.npz` (arrays only) and `pii_context.json`, written by
`guardrails/train_pii_context.py`. Cost: one MiniLM forward pass per gated message (bench/pii_recall.py).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.pii_names import GAZETTEERS, HONORIFICS, Token, fold, name_runs, tokenize, word_hash

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).with_name("pii_context.npz")
FEATURE_VERSION = 1
WINDOW_PIECES = 128  # pieces per forward pass, specials included: attention cost grows with its square
STRIDE_PIECES = 32  # overlap of consecutive windows
_SENTENCE_END = frozenset(".!?:;\"“”>*•-")
HAND_FEATURES = ("cap", "upper", "start", "cap_start", "honorific", "cap_prev", "cap_next", "lower_text",
                 *(f"g_{g}" for g in GAZETTEERS), *(f"g_{g}_prev" for g in GAZETTEERS),
                 *(f"g_{g}_next" for g in GAZETTEERS))


def hand_features(text: str, tokens: list[Token], gaz) -> np.ndarray:
    """(len(tokens), len(HAND_FEATURES)) float32 of 0/1 flags; rows of non-word tokens are left zero."""
    out = np.zeros((len(tokens), len(HAND_FEATURES)), dtype=np.float32)
    hashes = [word_hash(t.text) if t.is_word else None for t in tokens]
    member = [[h is not None and h in gaz[g] for g in GAZETTEERS] for h in hashes]
    lower_text = text == text.lower()
    n_gaz = len(GAZETTEERS)
    for i, tok in enumerate(tokens):
        if not tok.is_word:
            continue
        word = tok.text
        cap = word[0].isupper()
        before = text[tokens[i - 1].end:tok.start] if i else "\n"
        start = i == 0 or "\n" in before or tokens[i - 1].text in _SENTENCE_END
        honorific = (i > 0 and fold(tokens[i - 1].text) in HONORIFICS) or (
            i > 1 and tokens[i - 1].text == "." and fold(tokens[i - 2].text) in HONORIFICS)
        prev_cap = i > 0 and tokens[i - 1].is_word and tokens[i - 1].text[0].isupper()
        next_cap = i + 1 < len(tokens) and tokens[i + 1].is_word and tokens[i + 1].text[0].isupper()
        flags = [cap, word.isupper() and len(word) > 1, start, cap and start, honorific, prev_cap, next_cap,
                 lower_text, *member[i], *(member[i - 1] if i > 0 else [False] * n_gaz),
                 *(member[i + 1] if i + 1 < len(tokens) else [False] * n_gaz)]
        out[i] = flags
    return out


class PieceEncoder:
    """MiniLM's last hidden states per word piece, with character offsets; windows for long texts."""

    def __init__(self, tokenizer, model, window: int = WINDOW_PIECES, stride: int = STRIDE_PIECES) -> None:
        self.tokenizer, self.model = tokenizer, model.eval()
        self.window, self.stride = window, stride
        self.dim = int(model.config.hidden_size)

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> "PieceEncoder":
        from transformers import AutoModel, AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True),
                   AutoModel.from_pretrained(str(model_dir), local_files_only=True))

    @classmethod
    def from_embedder(cls, embedder) -> "LazyPieceEncoder | None":
        """The encoder inside a SentenceTransformerEmbedder (the same weights, loaded once, on first use); None
        for the fake embedder, whose vectors mean nothing per token."""
        return LazyPieceEncoder(embedder) if hasattr(embedder, "model_dir") else None

    def windows(self, texts: Sequence[str], batch: int = 32) -> list[list["Window"]]:
        """Per text, its windows (piece offsets and last hidden states), in order."""
        import torch

        enc = self.tokenizer(list(texts), return_offsets_mapping=True, truncation=True, max_length=self.window,
                             stride=self.stride, return_overflowing_tokens=True, padding=False)
        owners = enc["overflow_to_sample_mapping"]
        found: list[dict[int, Window]] = [{} for _ in texts]
        order = sorted(range(len(owners)), key=lambda k: len(enc["input_ids"][k]))  # similar lengths batched
        for at in range(0, len(order), batch):
            ids = [order[k] for k in range(at, min(at + batch, len(order)))]
            padded = self.tokenizer.pad({"input_ids": [enc["input_ids"][k] for k in ids],
                                         "attention_mask": [enc["attention_mask"][k] for k in ids]},
                                        return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**padded).last_hidden_state.float().numpy()
            for row, k in enumerate(ids):
                n = len(enc["input_ids"][k])  # padding is on the right
                found[owners[k]][k] = (list(enc["offset_mapping"][k]), hidden[row, :n])
        return [[w[k] for k in sorted(w)] for w in found]

    def word_vectors(self, texts: Sequence[str], tokens: Sequence[list[Token]], batch: int = 32) -> list[np.ndarray]:
        """Per text, (len(tokens), dim) float32: each token's first-piece vector (zeros if it has none)."""
        return [assemble(w, toks, self.dim) for w, toks in zip(self.windows(texts, batch), tokens)]


Window = tuple[list, np.ndarray]  # (piece character offsets, (pieces, dim) hidden states)


def assemble(windows: list[Window], tokens: list[Token], dim: int) -> np.ndarray:
    """(len(tokens), dim): each token's first-piece vector, taken from the window where that piece is farthest
    from an edge; zeros for a token without a piece."""
    best: dict[int, tuple[int, np.ndarray]] = {}  # char start -> (edge distance, vector)
    for offsets, hidden in windows:
        n = len(offsets)
        for p, (a, b) in enumerate(offsets):
            if b <= a:  # special tokens
                continue
            edge = min(p, n - 1 - p)
            seen = best.get(a)
            if seen is None or edge > seen[0]:
                best[a] = (edge, hidden[p])
    starts = sorted(best)
    vecs = np.zeros((len(tokens), dim), dtype=np.float32)
    for i, tok in enumerate(tokens):
        j = np.searchsorted(starts, tok.start)
        if j < len(starts) and starts[j] < tok.end:
            vecs[i] = best[starts[j]][1]
    return vecs


class LazyPieceEncoder:
    """A PieceEncoder over an embedder's model, built on the first call (the Guard is built before any request).

    It also owns the input rails' shared pass: `sentence_vector(text)` runs the sentence-transformers model once and
    gives the vector `embedder.embed` would; when the text fits in one name-tagger window, the piece vectors of
    that same pass are kept (the last KEEP texts), so the name tagger's `word_vectors` on the text costs no second
    MiniLM pass. A chat message is one window (banking77's longest is 80 pieces, the window 128).
    """

    KEEP = 8

    def __init__(self, embedder) -> None:
        self.embedder, self._encoder = embedder, None
        self._kept: OrderedDict[str, list[Window]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def encoder(self) -> PieceEncoder:
        if self._encoder is None:
            st = self.embedder.model
            self._encoder = PieceEncoder(st.tokenizer, st[0].auto_model)
        return self._encoder

    def sentence_vector(self, text: str) -> np.ndarray:
        """`embedder.embed([text])[0]`, from a pass whose piece vectors are kept for `word_vectors`."""
        import torch

        st, encoder = self.embedder.model, self.encoder
        features = st.preprocess([text])
        with torch.inference_mode():
            out = st(features)
        vector = out["sentence_embedding"][0].float().numpy()
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)  # as embed(normalize_embeddings=True)
        ids = features["input_ids"][0].tolist()
        if len(ids) <= encoder.window:
            enc = st.tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=encoder.window)
            if enc["input_ids"] == ids:  # the same pieces as the name tagger's window: share them
                with self._lock:
                    self._kept[text] = [(list(enc["offset_mapping"]), out["token_embeddings"][0].float().numpy())]
                    while len(self._kept) > self.KEEP:
                        self._kept.popitem(last=False)
        return vector.astype(np.float32)

    def word_vectors(self, texts: Sequence[str], tokens: Sequence[list[Token]], batch: int = 32) -> list[np.ndarray]:
        with self._lock:
            kept = [self._kept.get(t) for t in texts]
        missing = [i for i, w in enumerate(kept) if w is None]
        if missing:
            for i, w in zip(missing, self.encoder.windows([texts[i] for i in missing], batch)):
                kept[i] = w
        return [assemble(w, toks, self.encoder.dim) for w, toks in zip(kept, tokens)]


@dataclass
class Head:
    """Logistic regression over standardised [vector ‖ hand features]."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    intercept: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


class ContextNameTagger:
    """Same interface as pii_names.NameTagger: `token_scores(text)`, `spans(text)`."""

    def __init__(self, encoder: PieceEncoder, head: Head, gaz, threshold: float) -> None:
        """`gaz`: the hashed tagger's gazetteers (NameTagger.gaz), shared rather than stored twice."""
        self.encoder, self.head, self.gaz, self.threshold = encoder, head, gaz, threshold

    @classmethod
    def load(cls, encoder: PieceEncoder, gaz, path: Path = DEFAULT_MODEL) -> tuple["ContextNameTagger", float]:
        """(tagger, gate threshold for the hashed tagger)."""
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if meta["feature_version"] != FEATURE_VERSION:
            raise ValueError(f"{path}: features v{meta['feature_version']}, code v{FEATURE_VERSION}; "
                             "retrain with guardrails/train_pii_context.py")
        with np.load(path, allow_pickle=False) as data:
            head = Head(data["mean"].astype(np.float32), data["scale"].astype(np.float32),
                        data["weights"].astype(np.float32), float(meta["intercept"]))
        return cls(encoder, head, gaz, float(meta["threshold"])), float(meta["gate"])

    def design(self, texts: Sequence[str]) -> list[tuple[list[Token], np.ndarray]]:
        tokens = [tokenize(t) for t in texts]
        vectors = self.encoder.word_vectors(texts, tokens)
        return [(toks, np.hstack([v, hand_features(t, toks, self.gaz)]))
                for t, toks, v in zip(texts, tokens, vectors)]

    def token_scores(self, text: str) -> list[tuple[Token, float]]:
        if not text.strip():
            return []
        toks, x = self.design([text])[0]
        return self.scored(toks, self.head.scores(x))

    @staticmethod
    def scored(toks: list[Token], p: np.ndarray) -> list[tuple[Token, float]]:
        """Word tokens with their scores; a word without upper/lower case (CJK, Thai, ...) scores 0: the
        training data is all in cased scripts, and the head scored lone Chinese characters as names."""
        return [(tok, float(p[i]) if _cased(tok.text) else 0.0) for i, tok in enumerate(toks) if tok.is_word]

    def spans(self, text: str, threshold: float | None = None) -> list[tuple[int, int, float]]:
        """Names as in pii_names.name_runs, less runs of single letters ("my x boyfriend", a quoted "г")."""
        runs = name_runs(text, self.token_scores(text), self.threshold if threshold is None else threshold)
        return [(a, b, p) for a, b, p in runs if any(len(w) > 1 for w in _LETTERS.findall(text, a, b))]


_LETTERS = re.compile(r"[^\W\d_]+")


def _cased(word: str) -> bool:
    return any(ch.lower() != ch.upper() for ch in word)


class GatedNameTagger:
    """The hashed tagger as a cheap gate in front of the contextual one; same interface as NameTagger."""

    def __init__(self, hashed, context: ContextNameTagger, gate: float) -> None:
        self.hashed, self.context, self.gate = hashed, context, gate

    def gated(self, text: str) -> bool:
        """Some cased word scores at least the gate with the hashed tagger (uncased words, e.g. Chinese, score 0
        with the contextual tagger anyway, so they never pay for its pass)."""
        return max((p for tok, p in self.hashed.token_scores(text) if _cased(tok.text)), default=0.0) >= self.gate

    def token_scores(self, text: str) -> list[tuple[Token, float]]:
        return self.context.token_scores(text) if self.gated(text) else []

    def spans(self, text: str, threshold: float | None = None) -> list[tuple[int, int, float]]:
        return self.context.spans(text, threshold) if self.gated(text) else []

    def recall_tagger(self) -> "RecallNameTagger":
        """The hashed tagger alone at the gate threshold: no MiniLM pass, more recall, less precision."""
        return RecallNameTagger(self.hashed, self.gate)


class RecallNameTagger:
    """The hashed tagger at a lower threshold (the gate's), for text that is stored but never answered (a blocked
    message): every word the contextual tagger could have called a name is masked, without its forward pass."""

    def __init__(self, hashed, threshold: float) -> None:
        self.hashed, self.threshold = hashed, threshold

    def token_scores(self, text: str) -> list[tuple[Token, float]]:
        return self.hashed.token_scores(text)

    def spans(self, text: str, threshold: float | None = None) -> list[tuple[int, int, float]]:
        return self.hashed.spans(text, self.threshold if threshold is None else threshold)


def gated_tagger(hashed, encoder, path: Path = DEFAULT_MODEL):
    """The GatedNameTagger over `hashed` (a NameTagger) and `encoder`; `hashed` alone when `path` is missing."""
    if not path.exists():
        log.warning("no contextual name model at %s: hashed name tagger only (guardrails/train_pii_context.py)", path)
        return hashed
    context, gate = ContextNameTagger.load(encoder, hashed.gaz, path)
    return GatedNameTagger(hashed, context, gate)
