"""PII and secret masking, whole texts and streams.

PII comes from `finetune.pii.PiiRedactor` (emails, IBANs, cards, national IDs, IPs, phones, person names);
secrets are added here: API keys (ragtune `rt_…`, OpenAI-style `sk-…`, GitHub, Slack, Google, AWS access key
ids), AWS secret keys and other values after a `password` / `secret` / `token` / `api key` label, JWTs, and
private-key blocks. Every value becomes a placeholder such as `[EMAIL]` or `[SECRET]`.

`StreamMasker` masks a stream of text pieces (model tokens) as they come: it emits everything that can no
longer be part of a value and holds back only the tail that could still be the start of one (a partial
e-mail, digit group, capitalised name, key prefix), at most `holdback_max_chars`; `flush()` ends the stream.
With the person-name tagger on, the last READ_AHEAD_TOKENS + 1 tokens (CONTEXT_READ_AHEAD_TOKENS + 1 with the
contextual tagger) are held back too, since a word's verdict
depends on the words after it. Masking piece by piece gives the same text as masking the whole answer at once, as
long as no single value is longer than the holdback limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from finetune.pii import DEFAULT_NAME_MODEL, PiiRedactor, PiiSpan
from finetune.pii import KINDS as PII_KINDS
from guardrails.pii_names import tokenize

KINDS = (*PII_KINDS, "secret")
_SECRET = re.compile(
    r"-----BEGIN (?:[A-Z ]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z ]+ )?PRIVATE KEY-----|\Z)"
    r"|(?<![\w-])(?:rt|sk|pk|rk)[_-](?:(?:live|test|proj|ant)[_-])?[A-Za-z0-9_-]{16,}"
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16})\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
# The value after a label: "password: hunter2", "api_key = 'abc…'", "aws_secret_access_key=…"
_LABELLED = re.compile(
    r"\b(?:pass(?:word|wd|phrase)?|pwd|secret(?:[ _-]?key)?|api[ _-]?key|access[ _-]?token|auth[ _-]?token|token"
    r"|client[ _-]?secret|aws[ _-]?secret[ _-]?access[ _-]?key|private[ _-]?key)\b[\"']?\s*(?:is\s*[:=]?|[:=]|=>)\s*"
    r"[\"']?([^\s\"',;]{4,})", re.I)


@dataclass(frozen=True)
class Masked:
    text: str
    spans: list[PiiSpan]  # positions in the original text

    @property
    def kinds(self) -> list[str]:
        return sorted({s.kind for s in self.spans})


class PiiMasker:
    """Finds PII and secrets of the chosen kinds (default all of KINDS) and masks them."""

    def __init__(self, kinds: Sequence[str] | None = None, name_model: Path | None = DEFAULT_NAME_MODEL,
                 encoder=None, names=None, known=None) -> None:
        """`name_model`: the person-name tagger (finetune.pii.PiiRedactor); None leaves names to the rules.
        `encoder`: MiniLM word-piece vectors for the contextual name tagger (PieceEncoder.from_embedder(embedder);
        None with the fake embedder: the hashed tagger alone). `names`: a ready name tagger instead of both.
        `known`: the corpus's own words, never a tagged name on their own (finetune.pii.PiiRedactor)."""
        chosen = tuple(KINDS if kinds is None else kinds)
        if unknown := sorted(set(chosen) - set(KINDS)):
            raise ValueError(f"unknown PII kinds {unknown}; known: {', '.join(KINDS)}")
        pii = [k for k in PII_KINDS if k in chosen]
        self.kinds = tuple(k for k in KINDS if k in chosen)
        self._redactor = PiiRedactor(pii, name_model, encoder, names, known) if pii else None
        self._known = known
        self._secrets = "secret" in chosen

    @property
    def read_ahead_tokens(self) -> int:
        """Tokens after a word that can still change its verdict (and that streaming holds back)."""
        return CONTEXT_READ_AHEAD_TOKENS if self._redactor is not None and self._redactor.uses_context else \
            READ_AHEAD_TOKENS

    @property
    def reads_ahead(self) -> bool:
        """Whether a word's verdict depends on the words after it (the name tagger is on)."""
        return self._redactor is not None and self._redactor.uses_name_model

    def secret_spans(self, text: str) -> list[PiiSpan]:
        if not self._secrets:
            return []
        spans = [PiiSpan("secret", *m.span(), m.group()) for m in _SECRET.finditer(text)]
        spans += [PiiSpan("secret", *m.span(1), m.group(1)) for m in _LABELLED.finditer(text)]
        return spans

    def find(self, text: str) -> list[PiiSpan]:
        """Non-overlapping spans sorted by start; secrets win over PII they overlap (a key is not a phone)."""
        secrets = _disjoint(self.secret_spans(text))
        pii = self._redactor.find(text) if self._redactor else []
        keep = [s for s in pii if not any(s.start < t.end and t.start < s.end for t in secrets)]
        return sorted(secrets + keep, key=lambda s: s.start)

    def mask(self, text: str) -> Masked:
        spans = self.find(text)
        out = text
        for span in reversed(spans):
            out = f"{out[:span.start]}[{span.kind.upper()}]{out[span.end:]}"
        return Masked(out, spans)

    def for_blocked(self) -> "PiiMasker":
        """The masker for a message the input rails block: it is stored, never answered, so names come from the hashed
        tagger at the contextual tagger's gate threshold (more recall, less precision) and cost no MiniLM pass."""
        tagger = self._redactor.name_tagger if self._redactor is not None else None
        recall = tagger.recall_tagger() if hasattr(tagger, "recall_tagger") else tagger
        return PiiMasker(self.kinds, name_model=None, names=recall, known=self._known)

    def stream(self, holdback_max_chars: int = 256, check_every_chars: int = 0) -> "StreamMasker":
        return StreamMasker(self, holdback_max_chars, check_every_chars)


def _disjoint(spans: list[PiiSpan]) -> list[PiiSpan]:
    out: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if not out or span.start >= out[-1].end:
            out.append(span)
    return out


# The tail that may still grow into a value: a run of characters values are made of (word characters, digits,
# separators inside numbers/e-mails/keys), and before it capitalised words or digit groups of the same value.
_VALUE_CHARS = re.compile(r"[\w@.+\-:/=()#'’]*\Z")
_LABEL_TAIL = re.compile(r"(?:pass(?:word)?|pwd|secret|key|token|BEGIN[A-Z ]*)\W{0,4}\Z", re.I)
_JOINERS = frozenset("mr mrs ms dr prof is name named : = de van von der da di".split())
_PAUSE = re.compile(r"[.!?:;\n]\s*\Z")  # a piece ending a sentence or line: worth showing without waiting
_CONTEXT_CHARS = 120  # already-emitted text kept as left context (cues such as "Mr", "phone:")
READ_AHEAD_TOKENS = 2  # tokens right of a word that the name tagger reads (guardrails/pii_names.features)
# The contextual tagger (guardrails/pii_context.py) reads the whole window; a few tokens cover what moves a verdict.
CONTEXT_READ_AHEAD_TOKENS = 4


def _may_continue(word: str) -> bool:
    """Whether a word before the held-back tail can belong to the same value (name, number, labelled key)."""
    return (word[:1].isupper() or any(c.isdigit() for c in word) or bool(_LABEL_TAIL.search(word))
            or word.lower().rstrip(".:") in _JOINERS or word in (":", "="))


class StreamMasker:
    """Feed text pieces with `feed`; each call returns the masked text that is safe to show now."""

    def __init__(self, masker: PiiMasker, holdback_max_chars: int = 256, check_every_chars: int = 0) -> None:
        """`check_every_chars`: look at the text again only once this many new characters arrived, or at a line or
        sentence end (0: at every piece). Each look may run the MiniLM name tagger (about 10-15 ms on one core), so
        looking every few words instead of every token cuts the masker's CPU during generation several times."""
        self.masker = masker
        self.holdback_max_chars = holdback_max_chars
        self.check_every_chars = check_every_chars
        self._unchecked = 0  # characters fed since the last look
        self._pending = ""  # raw text not yet emitted
        self._context = ""  # raw text already emitted (its tail), for cues left of a value
        self.spans: list[PiiSpan] = []  # what was masked, positions relative to each emitted segment

    def feed(self, piece: str) -> str:
        self._pending += piece
        self._unchecked += len(piece)
        if self._unchecked < self.check_every_chars and not _PAUSE.search(piece):
            return ""
        self._unchecked = 0
        spans = self.masker.find(self._context + self._pending)
        return self._emit(self._safe_cut(spans), spans, final=False)

    def flush(self) -> str:
        return self._emit(len(self._pending), self.masker.find(self._context + self._pending), final=True)

    def _safe_cut(self, spans: list[PiiSpan]) -> int:
        """How much of the pending text can be emitted; `spans`: what is found in context + pending."""
        text = self._pending
        begin = text.rfind("-----BEGIN")
        if begin >= 0 and "-----END" not in text[begin:]:
            cut = begin  # an unfinished private-key block is held back whole
        else:
            cut = len(text) - len(_VALUE_CHARS.search(text).group())
            # Earlier words of the same value: "+44 20 7946", "John Ro", "4111 1111 11", "password: hun".
            while cut > 0:
                word = re.search(r"(\S+)(\s{1,2})\Z", text[:cut])
                if not word or not _may_continue(word.group(1)):
                    break
                cut = word.start(1)
        if self.masker.reads_ahead:
            # The name tagger scores a word by the tokens around it, two to the right: a word goes out only once
            # the tokens after it are complete, so that later text cannot turn it into a name already shown.
            tokens, ahead = tokenize(text), self.masker.read_ahead_tokens
            cut = min(cut, tokens[-ahead - 1].start if len(tokens) > ahead else 0)
        # Never cut through a value already found in what is pending.
        for span in spans:
            start, end = span.start - len(self._context), span.end - len(self._context)
            if start < cut < end or (end == cut and not self._pending[cut:]):
                cut = max(0, start) if start < cut else cut
        if len(text) - cut > self.holdback_max_chars:
            cut = len(text) - self.holdback_max_chars
        return cut

    def _emit(self, cut: int, spans: list[PiiSpan], final: bool) -> str:
        """Emit the first `cut` pending characters, masked by `spans` (found with all the text known so far, so a
        value's masking does not depend on where the stream was cut)."""
        if cut <= 0 and not final:
            return ""
        whole, done = self._context + self._pending, len(self._context)
        limit = done + cut
        out, last = [], done
        for span in spans:
            if span.end <= done or span.start >= limit:
                continue  # already emitted (masked then), or not yet due
            start = max(span.start, last)
            out.append(whole[last:start] + f"[{span.kind.upper()}]")
            last = min(span.end, limit)
            self.spans.append(span)
        out.append(whole[last:limit])
        self._context = whole[:limit][-_CONTEXT_CHARS:]
        self._pending = self._pending[cut:]
        return "".join(out)
