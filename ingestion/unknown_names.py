"""Names a question uses that the documents never contain: what they do not mention, they cannot answer.

The retrieval gate (`chat.min_dense_score`) asks whether anything found is close enough in meaning. An in-domain
question about something the documents lack ("the Kestrel K3 logger" where only the K2 exists) lands close to a real
chunk (the same product line), passes the gate, and the 270M model answers from that chunk about the wrong thing.
A name is sharper evidence than a cosine: one that no chunk of the searched collections contains, and that is neither
a near spelling of a term they contain (a typo) nor two of their terms run together ("WiFi" for "Wi-Fi"), says the
question is about something else.

Which words count is `chat.refuse_unknown_names`: `codes` (the default) takes only codes mixing letters and digits,
the kind that decided a scorecard (K3); `names` adds capitalised words and acronyms (Roth, CFO), which also catch a
brand or drug the documents call otherwise ("Zoloft", "PTO" where they say "paid time off") and refuse answerable
questions about it, while every such question on the golden sets was refused by the gate or the grounding rail
anyway. Ordinary words ("an ordinary USB stick", "roll over") and plain numbers ("$6,000", "4 years") never count:
they are often the asker's own and absent from a page that does hold the answer (Kestrel and Contoso answerable
questions: 16 of 190 hold such a word, none such a name). A question typed in capitals throughout has no telling
capitals and is not judged. Counted from the BM25 indexes (stemmed terms), so it follows every ingest and costs no
model pass.
"""

from __future__ import annotations

import difflib
import re
from typing import Literal, Sequence

from ingestion.bm25_index import BM25Index, _tokenize

# Words as typed: letters and digits joined by hyphens, dots or apostrophes stay one word ("KL-SP20", "401(k)" is two).
_WORD = re.compile(r"[^\W_](?:[\w'’.-]*[^\W_])?")
# What the PII rail put in place of a name ("[PERSON]", "[EMAIL]"): not a name the asker used.
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
# A longer text is a pasted message (a ticket, an e-mail) whose incidental names say nothing about what is asked.
MAX_WORDS = 60
# A term this similar (difflib ratio) to a term of the documents is taken for a misspelling of it, not a new name.
NEAR_SPELLING = 0.8


Kinds = Literal["codes", "names"]


def name_like(word: str, first: bool, kinds: Kinds = "names") -> bool:
    """A code mixing letters and digits (K3, SP20, X1000); with `kinds` "names" also a capitalised word not opening
    a sentence or an acronym (Roth, CFO). Never a plain number or a contraction."""
    letters = sum(c.isalpha() for c in word)
    if not letters or "'" in word or "’" in word:
        return False
    if any(c.isdigit() for c in word):
        return True
    if kinds == "codes":
        return False
    if letters >= 2 and word.isupper():
        return True
    return word[0].isupper() and not first


def candidate_names(question: str, kinds: Kinds = "names") -> list[str]:
    """The name-like words of `question`, in order. A word opening a sentence or a line is capitalised anyway and
    does not count as one; none at all when most words not opening a sentence are capitalised (title case, shouting)
    in a question of more than three words, or in a text longer than `MAX_WORDS` (a pasted message, not a question)."""
    text = _PLACEHOLDER.sub(" ", question)
    words = [(m.group(0).strip("."), _opens_sentence(text[:m.start()])) for m in _WORD.finditer(text)]
    words = [(w, first) for w, first in words if w]
    inner = [w for w, first in words if not first]
    if not words or len(words) > MAX_WORDS:
        return []
    if len(words) > 3 and sum(1 for w in inner if w[0].isupper()) * 2 > len(inner):
        return []
    found: list[str] = []
    for word, first in words:
        if name_like(word, first, kinds) and word not in found:
            found.append(word)
    return found


def _opens_sentence(before: str) -> bool:
    """The text before a word ends a sentence or a line (or is empty), quotes and list marks aside."""
    before = before.rstrip(" \t\"'“‘(*•>-")
    return not before or before[-1] in ".!?:;\n…"


class UnknownNames:
    """Which names of a question occur in none of `indexes` (one BM25 index per searched collection)."""

    def __init__(self, indexes: Sequence[BM25Index], kinds: Kinds = "names"):
        self.indexes = [i for i in indexes if i.size]
        self.kinds = kinds

    def __call__(self, question: str) -> list[str]:
        if not self.indexes:
            return []
        unknown = []
        for word in candidate_names(question, self.kinds):
            terms = _tokenize([word])[0]
            if not terms:  # a stopword ("I", "A") or a single letter
                continue
            if any(index.document_frequency(word) > 0 for index in self.indexes):
                continue
            missing = [t for t in terms if not self._known(t)]
            if not any(self._misspelt(t) or self._compound(t) for t in missing):
                unknown.append(word)
        return unknown

    def _known(self, term: str) -> bool:
        return any(term in index.vocabulary for index in self.indexes)

    def _compound(self, term: str) -> bool:
        """`term` is two terms of the documents run together ("wifi" for "Wi-Fi", "healthplus" for "Health Plus")."""
        return any(self._known(term[:i]) and self._known(term[i:]) for i in range(2, len(term) - 1))

    def _misspelt(self, term: str) -> bool:
        """`term` is within NEAR_SPELLING of a term of the documents (≥ 4 characters: "k3" is not a typo of "k2")."""
        return len(term) >= 4 and any(
            difflib.get_close_matches(term, index.vocabulary, n=1, cutoff=NEAR_SPELLING) for index in self.indexes)
