"""Reference-based answer metrics that need no judge model.

Token F1 is SQuAD's (normalised bag-of-words overlap); ragas ships string-distance and n-gram
metrics but not this one, and it is the figure papers on RAFT report, so we keep 20 lines of it.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d{1,2}\]")


def normalize(text: str) -> list[str]:
    text = _CITATIONS.sub(" ", text.lower())
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction), normalize(reference)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)
