"""Person-name tagger: a token classifier that finds names which no rule can list.

A logistic regression over hashed token features (the word, its shape, prefixes and suffixes, its neighbours
two to each side, and gazetteer membership), scored per word token; runs of name tokens on one line become
spans. The gazetteers come from package data, not from the labelled set: first and last names of every Faker
locale, place names (Faker cities, states, countries), and the frequent English words of the MiniLM vocabulary.
They are stored as CRC32 hashes of the folded word (lower case, accents stripped), so the artefact stays small
and the words need no lookup table.

Weights and gazetteers live in `pii_names.npz` (arrays only: loaded with `allow_pickle=False`), the threshold
and training facts in `pii_names.json`; both are written by `guardrails/train_pii.py`. Cost: about 30 features
per word, a dict lookup each, so a chat message of 30 words takes well under a millisecond.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).with_name("pii_names.npz")
WEAK_SHARE = 0.5  # a word beside a name joins it from this share of the threshold
FEATURE_VERSION = 1  # bump when features() changes: weights trained on older features are refused
GAZETTEERS = ("first", "last", "place", "common")
# Honorifics and name cues are few and closed-class: listed here rather than learned from data.
HONORIFICS = frozenset("mr mrs ms miss mx dr prof sir dame madam mme mlle herr frau sr sra sig dott".split())
_TOKEN = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+|\S")
_SENTENCE_END = frozenset(".!?:;\"“”>*•-")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def fold(word: str) -> str:
    """Lower case without accents: "Jürgen" meets "jurgen" in a gazetteer."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(ch))


def word_hash(word: str) -> int:
    return zlib.crc32(fold(word).encode("utf-8"))


def shape(word: str) -> str:
    """Character classes with repeats collapsed: "Kowalczyk" -> "Xx", "O'Neil" -> "X'Xx", "4111" -> "d"."""
    out = []
    for ch in word[:12]:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def features(text: str, tokens: list[Token], i: int, gaz: dict[str, frozenset[int]]) -> list[str]:
    """Feature names of word token i; `gaz` maps each name in GAZETTEERS to a set of word hashes."""
    tok = tokens[i]
    word, low = tok.text, fold(tok.text)
    h = zlib.crc32(low.encode("utf-8"))
    in_gaz = [g for g in GAZETTEERS if h in gaz[g]]
    cap = word[0].isupper()
    upper = word.isupper() and len(word) > 1
    before = text[tokens[i - 1].end:tok.start] if i else "\n"
    start = i == 0 or "\n" in before or tokens[i - 1].text in _SENTENCE_END
    f = ["bias", f"w={low}", f"sh={shape(word)}", f"s3={low[-3:]}", f"s2={low[-2:]}", f"p3={low[:3]}",
         f"len={min(len(word), 4)}", f"cap={cap}", f"upper={upper}", f"start={start}", f"cap&start={cap}{start}"]
    f += [f"g={g}" for g in in_gaz] + [f"g={g}&cap={cap}&start={start}" for g in in_gaz]
    if not in_gaz:
        f.append(f"g=none&cap={cap}")
    for d in (-2, -1, 1, 2):
        j = i + d
        if j < 0 or j >= len(tokens):
            f.append(f"w{d}=<edge>")
            continue
        other = tokens[j]
        f += [f"w{d}={fold(other.text)}", f"sh{d}={shape(other.text)}"]
        if abs(d) == 1:
            gap = text[other.end:tok.start] if d < 0 else text[tok.end:other.start]
            f.append(f"gap{d}={'nl' if chr(10) in gap else 'sp' if gap else 'none'}")
            if other.is_word:
                hj = word_hash(other.text)
                f += [f"g{d}={g}" for g in GAZETTEERS if hj in gaz[g]]
                f.append(f"cap{d}={other.text[0].isupper()}&cap={cap}")
    if i and fold(tokens[i - 1].text) in HONORIFICS or i > 1 and tokens[i - 1].text == "." and \
            fold(tokens[i - 2].text) in HONORIFICS:
        f.append("after_honorific")
    return f


def bucket(feature: str, n_buckets: int) -> int:
    return zlib.crc32(feature.encode("utf-8")) % n_buckets


class NameTagger:
    """Scores word tokens as part of a person's name; `spans(text)` gives (start, end, score) per name."""

    def __init__(self, rows: dict[int, np.ndarray], intercept: float, gaz: dict[str, frozenset[int]],
                 n_buckets: int, threshold: float) -> None:
        self.rows = rows  # bucket -> weight (float), only non-zero ones
        self.intercept = intercept
        self.gaz = gaz
        self.n_buckets = n_buckets
        self.threshold = threshold

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL) -> "NameTagger":
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if meta["feature_version"] != FEATURE_VERSION:
            raise ValueError(f"{path}: features v{meta['feature_version']}, this code computes v{FEATURE_VERSION}; "
                             "retrain with guardrails/train_pii.py")
        with np.load(path, allow_pickle=False) as data:
            weights = data["weights"].astype(np.float64)
            rows = dict(zip(data["buckets"].tolist(), weights.tolist()))
            gaz = {g: frozenset(data[f"gaz_{g}"].tolist()) for g in GAZETTEERS}
        return cls(rows, float(meta["intercept"]), gaz, int(meta["n_buckets"]), float(meta["threshold"]))

    def token_scores(self, text: str) -> list[tuple[Token, float]]:
        """Each word token with its probability of being part of a name."""
        tokens = tokenize(text)
        out = []
        for i, tok in enumerate(tokens):
            if not tok.is_word:
                continue
            z = self.intercept + sum(self.rows.get(bucket(f, self.n_buckets), 0.0)
                                     for f in features(text, tokens, i, self.gaz))
            out.append((tok, 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))))
        return out

    def spans(self, text: str, threshold: float | None = None) -> list[tuple[int, int, float]]:
        """Names as (start, end, highest token score); see `name_runs`."""
        return list(name_runs(text, self.token_scores(text), self.threshold if threshold is None else threshold))


@functools.lru_cache(maxsize=4)
def load_cached(path: Path = DEFAULT_MODEL) -> NameTagger | None:
    """The tagger at `path`, loaded once per process; None when the file is missing (names from rules only)."""
    if not path.exists():
        log.warning("no person-name model at %s: names come from rules only (guardrails/train_pii.py writes it)", path)
        return None
    return NameTagger.load(path)


def name_runs(text: str, scored: list[tuple[Token, float]], threshold: float) -> Iterable[tuple[int, int, float]]:
    """Runs of name tokens: word tokens that only spaces (or an initial's full stop) separate, each scoring at least
    WEAK_SHARE * threshold, and one of them at least the threshold (hysteresis: "anna kowalczyk" is one name even
    when the surname alone scores lower). A trailing initial keeps its full stop ("Clara R.")."""
    weak = threshold * WEAK_SHARE
    run: list[tuple[Token, float]] = []
    for tok, p in [*scored, (None, 0.0)]:
        if tok is not None and p >= weak and (not run or _joined(text, run[-1][0], tok)):
            run.append((tok, p))
            continue
        best = max((q for _, q in run), default=0.0)
        if best >= threshold:
            yield run[0][0].start, _with_stop(text, run[-1][0].end), best
        run = [(tok, p)] if tok is not None and p >= weak else []


def _joined(text: str, left: Token, right: Token) -> bool:
    gap = text[left.end:right.start]
    return gap == " " or gap in (". ", ".") and _initial(text, left.end)


def _initial(text: str, end: int) -> bool:
    """Whether the word ending at `end` is a single letter (an initial such as "R")."""
    return end >= 1 and text[end - 1].isalpha() and (end == 1 or not text[end - 2].isalpha())


def _with_stop(text: str, end: int) -> int:
    return end + 1 if _initial(text, end) and text[end:end + 1] == "." else end
