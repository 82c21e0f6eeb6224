"""Jailbreak and prompt-injection detection, for the user's message and for retrieved chunks.

Two signals, combined:
- heuristics on the text as `obfuscation.reveal` reads it: instruction overrides ("ignore previous
  instructions"), persona and no-limits framing (DAN, developer mode, "you are now"), system-prompt
  exfiltration, fake chat-turn markers, instructions addressed to the AI from inside a document, and the
  disguises themselves (base64/hex payloads, zero-width characters, homoglyphs, leetspeak);
- a logistic-regression classifier over [sentence embedding ‖ heuristic features], trained by
  `guardrails/train_injection.py` on labelled data and shipped as `injection_model.npz` (no pickle);
- with the MiniLM it was tuned on, the MiniLM itself tuned with LoRA on the same rows (guardrails/tuned_encoder.py,
  shipped in `injection_encoder/`, trained by `guardrails/train_injection_encoder.py`), which replaces the
  regression's probability: held out on the same folds it caught more of the kinds the regression missed most
  (hijacking, extraction, task switches, indirect instructions; README, Measured numbers).

The score is the classifier's attack probability, raised to the heuristic score when a strong pattern
(override or exfiltration, alone or disguised) fires. Without weights for the configured embedder (e.g. the
fake one in tests) the heuristic score is used alone. Chunks are scored per sentence so that the
offending sentences can be neutralised and the rest of the document kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails import embedded, gibberish
from guardrails.obfuscation import FEATURE_NAMES as OBFUSCATION_FEATURES
from guardrails.obfuscation import reveal

DEFAULT_MODEL = Path(__file__).parent / "injection_model.npz"
DEFAULT_ENCODER_DIR = Path(__file__).parent / "injection_encoder"

_F = re.I | re.S
PATTERNS: dict[str, re.Pattern] = {
    "override": re.compile(
        r"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|set aside)\b[^.!?\n]{0,40}?"
        r"\b(?:previous|prior|preceding|above|earlier|all|any|your|original|initial|system|the)\b[^.!?\n]{0,30}?"
        r"\b(?:instructions?|rules|prompts?|guidelines|directions|directives|constraints|programming|polic(?:y|ies)"
        r"|restrictions|guardrails|safeguards|filters)\b", _F),
    "exfiltration": re.compile(
        r"\b(?:reveal|print|show|repeat|output|display|leak|tell me|give me|what (?:is|are|were)|write out|dump"
        r"|recite)\b[^.!?\n]{0,30}?\b(?:your|the|my|initial|hidden|secret|original)\s+(?:\w+\s+){0,2}"
        r"(?:system prompt|prompt|instructions|system message|initial instructions|rules you were given)\b", _F),
    "persona": re.compile(
        r"\b(?:you are now|from now on,? you|you will (?:now )?(?:act|be|pretend|roleplay)|act as (?:an?|the|my)\s+\w*"
        r"\s*(?:ai|assistant|bot|model|character|persona)|pretend (?:to be|you are|that you)|role-?play as|stay in "
        r"character|(?:do anything now|\bDAN\b)|developer mode|jailbr(?:eak|oken)|evil (?:ai|assistant|bot|confidant)"
        r"|opposite mode|unlocked mode|god mode)", _F),
    "unrestricted": re.compile(
        r"(?:\bno (?:ethical |moral )?(?:restrictions|limitations|limits|filters|rules|censorship|guidelines|boundaries)"
        r"|\bunfiltered\b|\buncensored\b|without (?:any )?(?:restrictions|limitations|filters|censorship|ethics|morals)"
        r"|(?:not|never|no longer) (?:bound|restricted|limited|constrained) by|openai(?:'s)? (?:content )?polic"
        r"|never refuse|(?:can ?not|can't|won't|will not) refuse|free (?:of|from) (?:all )?(?:restrictions|rules)"
        r"|break(?:s|ing)? (?:the|your|all) (?:rules|guidelines))", _F),
    "turn_marker": re.compile(
        r"(?:^|\n)\s*(?:system|assistant)\s*:|<\|im_start\|>|<\|system\|>|\[/?INST\]|<</?SYS>>|\[system\]"
        r"|###\s*(?:instruction|system)|<system>|\$system\b|end of (?:user )?(?:input|prompt|document)\s*[.\]-]", _F),
    "indirect": re.compile(
        r"(?:\b(?:ai|assistant|chatbot|language model|llm|gpt|model)s?,?\s+(?:must|should|shall|has to|is instructed"
        r"|are instructed|please)\b|\bnote to (?:the )?(?:ai|assistant|model|llm|chatbot)|\bif you are an? "
        r"(?:ai|assistant|language model|llm|chatbot)|\bwhen (?:you )?(?:summari[sz]e|summari[sz]ing|answering|you "
        r"read|processing) this|\binstead,? (?:respond|reply|say|answer|output|tell the user)|\bdo not (?:tell|inform|"
        r"mention to) the user|\brespond only with\b|\b(?:send|forward|email|post) (?:all |the )?(?:user'?s? |the )?"
        r"(?:data|conversation|credentials|password|details|history)\b)", _F),
}
# Weight of each category in the heuristic score (1 - prod(1 - w) over what fired).
WEIGHTS = {"override": 0.9, "exfiltration": 0.85, "persona": 0.45, "unrestricted": 0.55, "turn_marker": 0.5,
           "indirect": 0.6}
STRONG = ("override", "exfiltration")
OBFUSCATION_WEIGHTS = (0.3, 0.4, 0.25, 0.35)  # invisible, homoglyphs, leet, encoded payloads
# The gibberish-run features (an optimised suffix, guardrails/gibberish.py) go to the classifiers only: no heuristic weight.
FEATURE_NAMES = tuple(PATTERNS) + OBFUSCATION_FEATURES + gibberish.FEATURE_NAMES
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class InjectionScore:
    score: float  # attack probability in [0, 1]
    heuristic: float
    classifier: float | None  # None without a model for this embedder
    fired: tuple[str, ...]  # heuristic categories and disguises found

    @property
    def reason(self) -> str:
        return ",".join(self.fired) or ("classifier" if self.classifier is not None else "none")


def features(text: str) -> tuple[str, np.ndarray, tuple[str, ...]]:
    """(revealed text, heuristic feature vector, names of what fired)."""
    revealed, signals = reveal(text)
    hits = [min(len(PATTERNS[name].findall(revealed)), 3) / 3.0 for name in PATTERNS]
    obf = signals.as_features()
    fired = tuple(name for name, h in zip(PATTERNS, hits) if h) + tuple(
        name for name, v in zip(OBFUSCATION_FEATURES, obf) if v)
    run = gibberish.split(revealed).features()
    fired += ("gibberish_suffix",) if run[0] else ()
    return revealed, np.asarray(hits + obf + run, dtype=np.float32), fired


def heuristic_score(feats: np.ndarray) -> float:
    keep = 1.0
    for weight, value in zip(list(WEIGHTS.values()) + list(OBFUSCATION_WEIGHTS), feats):
        if value > 0:
            keep *= 1.0 - weight
    return 1.0 - keep


def combine(prob: float | None, feats: np.ndarray) -> float:
    """The detector's score: the classifier's probability, raised to the heuristic score when a strong
    pattern fired; the heuristic score alone without a classifier."""
    heur = heuristic_score(feats)
    if prob is None:
        return heur
    return max(prob, heur if strong_fired(feats) else 0.0)


def strong_fired(feats: np.ndarray) -> bool:
    """Whether an override or exfiltration pattern (alone or disguised) fired in these heuristic features."""
    return any(feats[FEATURE_NAMES.index(name)] for name in STRONG)


class InjectionClassifier:
    """Logistic regression over [embedding ‖ heuristic features]; the weights of one embedder."""

    def __init__(self, weights: np.ndarray, bias: float, embedder_id: str, threshold: float = 0.5,
                 chunk_threshold: float = 0.5, meta: dict | None = None) -> None:
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = float(bias)
        self.embedder_id = embedder_id
        self.threshold = float(threshold)
        self.chunk_threshold = float(chunk_threshold)
        self.meta = meta or {}

    def predict(self, vectors: np.ndarray, feats: np.ndarray) -> np.ndarray:
        x = np.hstack([vectors, feats]).astype(np.float32)
        return 1.0 / (1.0 + np.exp(-(x @ self.weights + self.bias)))

    def save(self, path: Path) -> None:
        np.savez(path, weights=self.weights, bias=np.float64(self.bias), embedder_id=np.str_(self.embedder_id),
                 threshold=np.float64(self.threshold), chunk_threshold=np.float64(self.chunk_threshold),
                 feature_names=np.array(FEATURE_NAMES), meta=np.str_(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: Path) -> "InjectionClassifier":
        with np.load(path, allow_pickle=False) as data:
            if tuple(str(n) for n in data["feature_names"]) != FEATURE_NAMES:
                raise ValueError(f"{path}: trained with other heuristic features; retrain it")
            return cls(data["weights"], float(data["bias"]), str(data["embedder_id"]), float(data["threshold"]),
                       float(data["chunk_threshold"]), json.loads(str(data["meta"])))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 25) -> tuple[np.ndarray, float]:
    """L2-regularised, class-balanced logistic regression by Newton's method (deterministic)."""
    x = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    y = y.astype(np.float64)
    balance = np.where(y == 1, len(y) / (2 * max(y.sum(), 1)), len(y) / (2 * max((1 - y).sum(), 1)))
    w = np.zeros(x.shape[1])
    reg = np.full(x.shape[1], l2)
    reg[-1] = 0.0  # the bias is not shrunk
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (balance * (p - y)) + reg * w
        hess = (x * (balance * p * (1 - p))[:, None]).T @ x + np.diag(reg + 1e-6)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1].astype(np.float32), float(w[-1])


def load_encoder(embedder, model_dir: Path | None = None):
    """The shipped (or named) injection encoder for this embedder, or None (see tuned_encoder.load_encoder)."""
    from guardrails.tuned_encoder import load_encoder as load

    return load(embedder, model_dir, DEFAULT_ENCODER_DIR, "guardrails.injection_encoder",
                "guardrails.train_injection_encoder")


class InjectionDetector:
    """Scores texts; `embed` is the embedder (any object with `.embed(list[str]) -> ndarray` and `.id`)."""

    def __init__(self, embedder=None, classifier: InjectionClassifier | None = None, fast=None,
                 encoder=None) -> None:
        """`fast`: the first stage (guardrails.fast_injection.FastInjection), which needs no embedder; `encoder`: the
        tuned MiniLM (tuned_encoder.TunedEncoder, from `load_encoder`), which scores instead of `classifier`."""
        self.embedder = embedder
        usable = classifier is not None and embedder is not None and classifier.embedder_id == embedder.id
        self.classifier = classifier if usable else None
        self.fast = fast
        self.encoder = encoder

    def early(self, part: tuple[str, np.ndarray, tuple[str, ...]], threshold: float) -> InjectionScore | None:
        """The verdict on a message's `features` when it is already certain without the embedding pass, else None:
        a strong pattern whose heuristic score reaches `threshold` (`combine` blocks it whatever the classifier
        says), or the fast stage sure of an attack."""
        _, feats, fired = part
        heur = heuristic_score(feats)
        if heur >= threshold and strong_fired(feats):
            return InjectionScore(heur, heur, None, fired)
        if self.fast is not None:
            sure, p = self.fast.sure(part[0], feats)
            if sure:
                return InjectionScore(max(p, heur), heur, p, fired)
        return None

    def score_part(self, part: tuple[str, np.ndarray, tuple[str, ...]], vector: np.ndarray | None) -> InjectionScore:
        """The score of one message whose `features` and (revealed-text) embedding the caller already has."""
        return self._score([part], None if vector is None else vector[None, :])[0]

    @property
    def threshold(self) -> float:
        if self.encoder is not None:
            return self.encoder.input_threshold
        return self.classifier.threshold if self.classifier else 0.5

    @property
    def chunk_threshold(self) -> float:
        if self.encoder is not None:
            return self.encoder.output_threshold  # the encoder's second threshold is the chunk one
        return self.classifier.chunk_threshold if self.classifier else 0.5

    def score_many(self, texts: Sequence[str], vectors: np.ndarray | None = None) -> list[InjectionScore]:
        """`vectors`: embeddings of the revealed texts if the caller already has them."""
        return self._score([features(t) for t in texts], vectors)

    def _score(self, parts: list[tuple[str, np.ndarray, tuple[str, ...]]],
               vectors: np.ndarray | None = None) -> list[InjectionScore]:
        """Scores of texts whose `features` are already computed."""
        feats = np.stack([p[1] for p in parts]) if parts else np.zeros((0, len(FEATURE_NAMES)), np.float32)
        probs: list[float | None] = [None] * len(parts)
        if self.encoder is not None and parts:  # its own MiniLM pass: the shared vector is the untuned model's
            probs = [float(p) for p in self.encoder.probabilities([p[0] for p in parts])]
        elif self.classifier is not None and parts:
            if vectors is None:
                vectors = self.embedder.embed([p[0] for p in parts])
            probs = [float(p) for p in self.classifier.predict(vectors, feats)]
        return [InjectionScore(combine(prob, f), heuristic_score(f), prob, fired)
                for (_, f, fired), prob in zip(parts, probs)]

    def score(self, text: str, vector: np.ndarray | None = None) -> InjectionScore:
        return self.score_many([text], None if vector is None else vector[None, :])[0]

    def score_chunk(self, chunk: str) -> tuple[InjectionScore, list[tuple[str, InjectionScore]]]:
        return self.score_chunks([chunk])[0]

    def score_chunks(self, chunks: Sequence[str]) -> list[tuple[InjectionScore, list[tuple[str, InjectionScore]]]]:
        """Per chunk: its score (its worst sentence) and each suspicious sentence with its score.

        Only sentences where a heuristic fires, or that talk to an AI/about instructions, go to the
        classifier (all chunks' in one batch): a retrieved chunk is mostly prose, and embedding every
        sentence would cost too much.
        """
        suspects = []  # per chunk: (sentence, its features) worth the classifier
        planted = []  # per chunk: {sentence: the shapes of an instruction planted for the model (guardrails/embedded.py)}
        for chunk in chunks:
            sentences = [s.strip() for s in _SENTENCE.split(chunk) if s and s.strip()]
            parts = list(map(features, sentences))
            suspects.append([(s, part) for s, part in zip(sentences, parts) if _suspect(part)])
            planted.append(_planted(sentences, parts))
        flat_scores = iter(self._score([part for group in suspects for _, part in group]))
        out = []
        for chunk, group, found in zip(chunks, suspects, planted):
            scored = [(s, _raise(next(flat_scores), found.pop(s, ()))) for s, _ in group]
            scored += [(s, InjectionScore(EMBEDDED_SCORE, EMBEDDED_SCORE, None, shapes)) for s, shapes in found.items()]
            whole = features(chunk)  # disguises spread over sentences (a base64 blob on its own line)
            worst = max((sc for _, sc in scored), key=lambda sc: sc.score, default=None)
            whole_heur = heuristic_score(whole[1])
            if worst is None or whole_heur > worst.score:
                worst = InjectionScore(whole_heur, whole_heur, None, whole[2])
            out.append((worst, scored))
        return out


EMBEDDED_SCORE = 0.95  # a sentence with a planted-instruction shape: above any calibrated chunk threshold


def _planted(sentences: list[str], parts: list) -> dict[str, tuple[str, ...]]:
    """{sentence: shapes} of the sentences that carry an instruction planted for the model, read as `reveal` reads
    them; a sentence that only addresses the model takes the order after it along."""
    found: dict[str, tuple[str, ...]] = {}
    previous: tuple[str, ...] = ()
    for sentence, (revealed, _, _) in zip(sentences, parts):
        shapes = embedded.findings(revealed) or (("addressed_order",) if embedded.carries_on(previous, revealed) else ())
        if shapes:
            found[sentence] = found.get(sentence, ()) + shapes
        previous = shapes
    return found


def _raise(score: InjectionScore, shapes: tuple[str, ...]) -> InjectionScore:
    if not shapes:
        return score
    return InjectionScore(max(score.score, EMBEDDED_SCORE), max(score.heuristic, EMBEDDED_SCORE), score.classifier,
                          score.fired + shapes)


CHUNK_MIN_WORDS = 5  # shorter lines (headings, table headers) reach the classifier only when a heuristic fires


def _suspect(part: tuple[str, np.ndarray, tuple[str, ...]]) -> bool:
    """Worth the classifier (`part`: a sentence's `features`): talks to an AI or about instructions, and is a
    sentence rather than a heading ("Acceptable use and AI tools" is about AI, not addressed to it) unless a
    heuristic pattern fired."""
    revealed, feats, _ = part
    if not _CUE.search(revealed):
        return False
    return len(revealed.split()) >= CHUNK_MIN_WORDS or bool(feats.any())


_CUE = re.compile(r"\b(?:ignore|disregard|forget|override|instruction|instructions|prompt|assistant|ai|chatbot|model"
                  r"|llm|gpt|you are|you must|you will|respond|reply|pretend|system|rules|jailbreak|do anything)\b",
                  re.I)
