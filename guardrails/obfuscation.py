"""Undo the cheap disguises attackers put on instructions, and measure how much disguise there was.

`reveal(text)` returns the text as a detector should read it: NFKC-normalised, zero-width and bidi control
characters removed, Cyrillic/Greek look-alike letters folded to Latin inside Latin words, leetspeak digits
read as letters inside words, and any base64 / hex payload decoded and appended. `signals(text)` counts what
was undone: those counts are features of the injection classifier (a benign question rarely hides anything).
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

# Zero-width, joiners, word joiner, BOM, soft hyphen, bidi embeddings/overrides/isolates, tag characters.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
# Cyrillic and Greek letters that render like Latin ones (lower and upper case).
_HOMOGLYPHS = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "А": "A", "В": "B", "Е": "E", "К": "K",
    "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "Α": "A", "Β": "B",
    "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T",
    "Υ": "Y", "Χ": "X",
})
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s"})
_WORD = re.compile(r"\S+")
_LETTER_RUN = re.compile(r"[^\W\d_]")
# A word with a leet digit between two letters: "1gn0r3", "pr0mpt", "ru1es". Numbers, "401k", "mp3", "COVID-19" stay.
_LEET_WORD = re.compile(r"(?<![\w$])(?=[A-Za-z013457$]*[a-z][013457$]{1,3}[a-z])[A-Za-z013457$]{4,}(?![\w$])")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[ :]?){16,}(?![0-9A-Fa-f])")


@dataclass(frozen=True)
class Signals:
    invisible: int  # zero-width / bidi / tag characters removed
    homoglyph_words: int  # words mixing Latin with look-alike Cyrillic/Greek letters
    leet_words: int  # words with digits or symbols standing for letters
    encoded_payloads: int  # base64 / hex blobs that decode to readable text

    def as_features(self) -> list[float]:
        return [float(min(self.invisible, 3)), float(min(self.homoglyph_words, 3)),
                float(min(self.leet_words, 5)) / 5.0, float(min(self.encoded_payloads, 2))]


FEATURE_NAMES = ("invisible", "homoglyph_words", "leet_words", "encoded_payloads")


def _is_latin_word(word: str) -> bool:
    letters = [ch for ch in word if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) * 2 >= len(letters)


def _fold_homoglyphs(text: str) -> tuple[str, int]:
    count, out = 0, []
    for word in re.split(r"(\s+)", text):
        folded = word.translate(_HOMOGLYPHS)
        if folded != word and _is_latin_word(folded) and any(ch.isascii() and ch.isalpha() for ch in word):
            count += 1
            word = folded
        out.append(word)
    return "".join(out), count


def _unleet(text: str) -> tuple[str, int]:
    count = 0

    def fix(match: re.Match) -> str:
        nonlocal count
        word = match.group()
        if sum(ch.isalpha() for ch in word) < 3:
            return word
        count += 1
        return word.translate(_LEET)

    return _LEET_WORD.sub(fix, text), count


def _readable(raw: bytes) -> str | None:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in decoded)
    letters = sum(ch.isalpha() or ch == " " for ch in decoded)
    if len(decoded) >= 8 and printable == len(decoded) and letters >= 0.7 * len(decoded) and " " in decoded:
        return decoded
    return None


def decode_payloads(text: str) -> list[str]:
    """Readable texts hidden as base64 or hex in `text` (at most 5)."""
    found: list[str] = []
    for match in _B64.finditer(text):
        blob = match.group()
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=False)
        except (binascii.Error, ValueError):
            continue
        if (decoded := _readable(raw)) is not None:
            found.append(decoded)
    for match in _HEX.finditer(text):
        try:
            raw = bytes.fromhex(re.sub(r"[ :]", "", match.group()))
        except ValueError:
            continue
        if (decoded := _readable(raw)) is not None:
            found.append(decoded)
    return found[:5]


def reveal(text: str) -> tuple[str, Signals]:
    """The text a detector should read, and what disguises were removed to get it."""
    normal = unicodedata.normalize("NFKC", text)
    invisible = len(_INVISIBLE.findall(normal))
    normal = _INVISIBLE.sub("", normal)
    normal, homoglyphs = _fold_homoglyphs(normal)
    payloads = decode_payloads(normal)  # before leet folding, which would garble base64
    normal, leet = _unleet(normal)
    if payloads:
        normal = normal + "\n" + "\n".join(payloads)
    return normal, Signals(invisible, homoglyphs, leet, len(payloads))
