"""The Guard: every rail behind four calls, configured by the `guardrails` settings section.

    guard = Guard.from_settings(settings)            # or Guard(settings.guardrails, embedder)
    v = guard.check_input(user_text)                 # InputVerdict: blocked? reply? masked text
    kept = guard.check_chunks([hit.text for hit in hits])   # list[ChunkVerdict]: dropped? neutralised text
    out = guard.check_output(answer, [c.text for c in kept if not c.dropped])   # OutputVerdict
    stream = guard.output_stream(); stream.feed(token) ...; stream.flush()      # masked streaming
    unit = guard.check_unit(answer_so_far, sentence, contexts)   # one streamed unit before release (OutputVerdict)

Input rails: injection (block; a fast first stage blocks the attacks it is sure of before the one shared MiniLM
pass), PII/secrets (mask), topic (replace with the scope message). Retrieval rail:
chunk injection (neutralise the instruction-like sentences, or drop). Output rails: system-prompt leakage and
groundedness (replace the whole answer), PII/secrets (mask). The Guard is pure computation: it logs nothing
and keeps no state between calls, so the caller owns audit logging (the results carry rail, action, score
and a reason without the matched text) and metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.fast_injection import DEFAULT_FAST_MODEL, FastInjection
from guardrails import harmful as harmful_rail
from guardrails.grounding import GroundingChecker
from guardrails.injection import DEFAULT_MODEL, FEATURE_NAMES, InjectionClassifier, InjectionDetector, features
from guardrails.injection import load_encoder as load_injection_encoder
from guardrails.leakage import LeakageRail
from guardrails.pii_context import PieceEncoder
from guardrails.pii_rail import PiiMasker, StreamMasker
from guardrails.topics import TopicRail
from guardrails.verdict import ChunkVerdict, InputVerdict, OutputVerdict, RailResult

log = logging.getLogger(__name__)
NEUTRALISED = "[instruction removed]"


class Guard:
    def __init__(self, config, embedder, classifier: InjectionClassifier | None = None,
                 instruction: str | None = None, refusal: str | None = None, fast: FastInjection | None = None,
                 known=None, injection_encoder=None) -> None:
        """`config`: a GuardrailsSettings; `embedder`: the project's embedder (real or fake);
        `classifier`: injection weights for that embedder (None: heuristics only); `fast`: the injection rail's
        first stage, which blocks the attacks it is sure of without the embedding pass; `injection_encoder`: the
        tuned MiniLM that scores instead of `classifier` (injection.load_encoder); `instruction`: the system
        instruction to watch for leaks (default assistant.prompt.INSTRUCTION); `refusal`: the model's own
        refusal sentence, which is always grounded (default assistant.prompt.REFUSAL); `known`: the corpus's
        own words (assistant/corpus_words.py), never a person name on their own."""
        from assistant.prompt import REFUSAL

        self.config = config
        self.embedder = embedder
        self.injection = InjectionDetector(embedder, classifier, fast, injection_encoder)
        if classifier is not None and self.injection.classifier is None:
            log.warning("injection classifier was trained for %s, not %s: heuristics only",
                        classifier.embedder_id, getattr(embedder, "id", None))
        self.input_threshold = config.injection_threshold or self.injection.threshold
        self.chunk_threshold = config.chunk_injection_threshold or self.injection.chunk_threshold
        # Names: the contextual tagger over the embedder's MiniLM (the hashed tagger alone with the fake one). The
        # encoder also gives the input rails' one shared pass: the message's sentence vector and its piece vectors.
        self.encoder = PieceEncoder.from_embedder(embedder)
        self.masker = PiiMasker(config.pii_kinds, encoder=self.encoder, known=known)
        self.blocked_masker = self.masker.for_blocked()
        self.topics = TopicRail(embedder, config.topics, config.topic_threshold)
        self.grounding = GroundingChecker(config.grounding_threshold, config.grounding_sentence_min_overlap,
                                          refusals=[refusal or REFUSAL])
        self.leakage = LeakageRail(instruction, config.leakage_threshold)
        self.harmful = harmful_rail.rail_from_config(config, embedder)  # None: the harmful-content rail is off
        self._last_vector: tuple[str, np.ndarray] | None = None

    @classmethod
    def from_settings(cls, settings, embedder=None, known=None) -> "Guard":
        """From the whole Settings: the configured embedder and injection weights (the packaged file by
        default; a missing file means heuristics only); `known` as in `__init__`."""
        from ingestion.embedder import build_embedder

        config = settings.guardrails
        path = Path(config.injection_model) if config.injection_model else DEFAULT_MODEL
        classifier = InjectionClassifier.load(path) if path.exists() else None
        if classifier is None:
            log.warning("no injection classifier at %s: heuristics only", path)
        fast = None
        if config.injection_fast_stage:
            fast_path = Path(config.injection_fast_model) if config.injection_fast_model else DEFAULT_FAST_MODEL
            if fast_path.exists():
                fast = FastInjection.load(fast_path, FEATURE_NAMES)
                fast.threshold = config.injection_fast_threshold or fast.threshold
            else:
                log.warning("no fast injection stage at %s: every message takes the embedding pass", fast_path)
        embedder = embedder or build_embedder(settings.embedder, settings.models_dir)
        encoder = None
        if config.injection_encoder != "off":
            encoder = load_injection_encoder(embedder, Path(config.injection_encoder) if config.injection_encoder
                                             else None)
        return cls(config, embedder, classifier, fast=fast, known=known, injection_encoder=encoder)

    # -- input -------------------------------------------------------------------------------------------
    def check_input(self, text: str, harmful: bool = True) -> InputVerdict:
        """The input rails, then (`harmful`) the harmful-content rail on the masked text of a message nothing else
        blocked: the order the NeMo flows run them in, so both engines give the same verdict. `harmful=False`
        leaves it to the caller (the NeMo flow `ragtune check harmful input`)."""
        verdict = self._check_input(text)
        if not (harmful and self.harmful is not None and self.config.enabled) or verdict.blocked:
            return verdict
        verdict.results.append(harmful_rail.input_result(self.harmful, verdict.text, self._vector))
        if verdict.results[-1].acted:
            return InputVerdict(True, verdict.text, verdict.results, self.config.harmful_message)
        return verdict

    def _check_input(self, text: str) -> InputVerdict:
        """Injection first: an attack that the heuristics or the fast stage are sure of is blocked before any MiniLM
        pass, and its stored copy is masked by `blocked_masker`. Otherwise one pass gives the revealed text's
        vector (injection classifier, topics; the harmful-content rail reuses it through `_vector`'s one-entry memo)
        and, when the text is its own revealed form, the piece vectors that the name tagger reads."""
        if not self.config.enabled:
            return InputVerdict(False, text)
        part = features(text)
        attack = self.injection.early(part, self.input_threshold)
        results: list[RailResult] = []
        if attack is not None:
            results.append(RailResult("injection", True, "block", attack.score, attack.reason))
            masked = self._mask_pii(text, results, self.blocked_masker) if self.config.mask_input_pii else text
            return InputVerdict(True, masked, results, self.config.refusal_message)
        revealed = part[0]
        need_vector = self.injection.classifier is not None or self.config.topics_enabled
        vector = self._vector(revealed) if need_vector else None
        attack = self.injection.score_part(part, vector if self.injection.classifier is not None else None)
        if attack.score >= self.input_threshold:
            results.append(RailResult("injection", True, "block", attack.score, attack.reason))
        else:
            results.append(RailResult.passed("injection", attack.score))
        blocked = results[0].acted
        masked_text = text
        if self.config.mask_input_pii:
            masked_text = self._mask_pii(text, results, self.blocked_masker if blocked else self.masker)
        if self.config.topics_enabled and not blocked:
            results.append(self.topics.check(text, vector if revealed == text else self._vector(text)))
        reply = None
        if blocked:
            reply = self.config.refusal_message
        elif any(r.rail == "topic" and r.acted for r in results):
            reply = self.config.scope_message
        return InputVerdict(reply is not None, masked_text, results, reply)

    def _vector(self, text: str) -> np.ndarray:
        """The embedder's vector of `text`; through the shared pass when the embedder is a MiniLM-like model. The last
        text's vector is memoised (one entry, replaced atomically), so the harmful-content rail, which scores the
        message after the other input rails, costs no second pass when nothing was masked or cut."""
        last = self._last_vector
        if last is not None and last[0] == text:
            return last[1]
        vector = self.encoder.sentence_vector(text) if self.encoder is not None else self.embedder.embed([text])[0]
        self._last_vector = (text, vector)
        return vector

    # -- retrieval ---------------------------------------------------------------------------------------
    def check_chunks(self, chunks: Sequence[str]) -> list[ChunkVerdict]:
        """One verdict per chunk, in order; the suspicious sentences of all chunks are embedded in one batch."""
        if not self.config.enabled:
            return [ChunkVerdict(i, False, chunk) for i, chunk in enumerate(chunks)]
        return [self._chunk_verdict(i, chunk, worst, scored)
                for i, (chunk, (worst, scored)) in enumerate(zip(chunks, self.injection.score_chunks(chunks)))]

    def check_chunk(self, chunk: str, index: int = 0) -> ChunkVerdict:
        return self.check_chunks([chunk])[0] if self.config.enabled else ChunkVerdict(index, False, chunk)

    def _chunk_verdict(self, index: int, chunk: str, worst, scored) -> ChunkVerdict:
        if worst.score < self.chunk_threshold:
            return ChunkVerdict(index, False, chunk, [RailResult.passed("chunk_injection", worst.score)])
        bad = [sentence for sentence, sc in scored if sc.score >= self.chunk_threshold]
        if self.config.chunk_action == "drop" or not bad:  # nothing to cut out: the disguise spans the chunk
            return ChunkVerdict(index, True, "", [RailResult("chunk_injection", True, "drop", worst.score, worst.reason)])
        text = chunk
        for sentence in bad:
            text = text.replace(sentence, NEUTRALISED)
        return ChunkVerdict(index, False, text, [RailResult("chunk_injection", True, "mask", worst.score, worst.reason)])

    # -- output ------------------------------------------------------------------------------------------
    def check_output(self, answer: str, contexts: Sequence[str] | None = None, harmful: bool = True) -> OutputVerdict:
        """The output rails, then (`harmful`) the harmful-content rail on the answer they let through, in the NeMo
        flows' order. `harmful=False` leaves it to the caller (the NeMo flow `ragtune check harmful output`)."""
        verdict = self._check_output(answer, contexts)
        if not (harmful and self.harmful is not None and self.config.enabled) or verdict.replaced:
            return verdict
        verdict.results.append(harmful_rail.output_result(self.harmful, verdict.text, self._vector))
        if verdict.results[-1].acted:
            return OutputVerdict(self.config.harmful_output_message, True, verdict.grounded, verdict.results,
                                 verdict.unsupported)
        return verdict

    def _check_output(self, answer: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        """`contexts`: the chunk texts the answer was generated from; None or empty skips grounding."""
        if not self.config.enabled:
            return OutputVerdict(answer, False, None)
        results = [self.leakage.check(answer)]
        grounded, unsupported = self._grounding(answer, contexts, results)
        if results[0].acted:
            return OutputVerdict(self.config.refusal_message, True, grounded, results, unsupported)
        if grounded is False:
            return OutputVerdict(self.config.grounding_message, True, grounded, results, unsupported)
        text = self._mask_pii(answer, results) if self.config.mask_output_pii else answer
        return OutputVerdict(text, False, grounded, results, unsupported)

    def check_unit(self, so_far: str, unit: str, contexts: Sequence[str] | None = None) -> OutputVerdict:
        """The output rails on a streamed answer before `unit`, its newest part, is released (assistant/release.py).
        `so_far`: the answer up to and including `unit`. Leakage on `so_far` (a prefix never leaks more than the whole
        answer); the harmful-content rail on `unit` alone and on `so_far` (one harmful sentence in a long benign answer
        scores low on the whole); grounding on `so_far` at `grounding_threshold`, exactly as `check_output` judges a
        whole answer (None or empty `contexts` skips it). Checked in that order; the first that fails replaces with its
        message. Only grounding can recover (later supported sentences raise the share), so the caller may hold a
        unit back on `grounded is False` instead of ending the answer. PII is not masked here: the caller's streaming
        masker (`output_stream`) masks what passed."""
        if not self.config.enabled:
            return OutputVerdict(unit, False, None)
        results = [self.leakage.check(so_far)]
        if results[0].acted:
            return OutputVerdict(self.config.refusal_message, True, None, results)
        for text in ([unit, so_far] if so_far.strip() != unit.strip() else [so_far]) if self.harmful is not None else []:
            results.append(harmful_rail.output_result(self.harmful, text, self._vector))
            if results[-1].acted:
                return OutputVerdict(self.config.harmful_output_message, True, None, results)
        grounded, unsupported = self._grounding(so_far, contexts, results)
        if grounded is False:
            return OutputVerdict(self.config.grounding_message, True, False, results, unsupported)
        return OutputVerdict(unit, False, grounded, results, unsupported)

    def _grounding(self, answer: str, contexts: Sequence[str] | None, results: list[RailResult]) -> tuple[bool | None, list]:
        """The groundedness rail: (grounded, unsupported sentences), its result appended; (None, []) when it is off
        or there are no contexts (a closed-book answer has nothing to be grounded in)."""
        if not (self.config.grounding_enabled and contexts):
            return None, []
        found = self.grounding.check(answer, contexts)
        results.append(RailResult("grounding", True, "replace", found.score, "unsupported answer") if not found.grounded
                       else RailResult.passed("grounding", found.score))
        return found.grounded, found.unsupported

    def _mask_pii(self, text: str, results: list[RailResult], masker: PiiMasker | None = None) -> str:
        """The PII/secret rail: masked text; its result (score = values masked, reason = their kinds) appended."""
        masked = (masker or self.masker).mask(text)
        results.append(RailResult("pii", True, "mask", float(len(masked.spans)), ",".join(masked.kinds))
                       if masked.spans else RailResult.passed("pii", 0.0))
        return masked.text

    def mask_output_text(self, text: str) -> str:
        """Masked text for anything else shown to the user from the documents (citation snippets)."""
        return self.masker.mask(text).text if self.config.enabled and self.config.mask_output_pii else text

    def output_stream(self) -> StreamMasker | "_Passthrough":
        """A streaming masker for one answer: `feed(piece) -> str` as tokens arrive, `flush() -> str` at the end.
        Leakage and grounding need the whole answer: run `check_output` on it after the stream ends."""
        if not (self.config.enabled and self.config.mask_output_pii):
            return _Passthrough()
        return self.masker.stream(self.config.stream_holdback_max_chars, self.config.stream_check_every_chars)


class _Passthrough:
    spans: list = []

    def feed(self, piece: str) -> str:
        return piece

    def flush(self) -> str:
        return ""
