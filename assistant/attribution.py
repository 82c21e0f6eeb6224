"""Citations the model did not write: which shown source an answer's sentences come from.

The 270M base model never writes [n] (cited rate 0.000 on the full Contoso dev set: README, Measured numbers), yet a
reader wants to see where an answer comes from, inline, as the prompt asks. When an answer that is not a refusal
cites nothing, each of its sentences is attributed to the shown source holding the window of three consecutive
sentences that shares most of its content words (the grounding rail's measure: guardrails/grounding.py), when that
share reaches `min_overlap`. The answer then ends with those sources' [n], in the order first supported, and is
marked `attributed`, so clients and scorecards tell them from citations the model wrote. An answer no source
supports gets none: a citation is a claim about the source, not decoration.
"""

from __future__ import annotations

from typing import Sequence

from guardrails.grounding import _CITATION, content_words, sentences


def attribute(answer: str, contexts: Sequence[str], min_overlap: float) -> list[int]:
    """The 1-based numbers of the sources in `contexts` that support the sentences of `answer`, first supported
    first; [] when no sentence reaches `min_overlap` (a share of its content words) in any source."""
    windows: list[tuple[int, set[str]]] = []
    for number, context in enumerate(contexts, start=1):
        parts = sentences(context) or [context]
        windows += [(number, content_words(" ".join(parts[i:i + 3]))) for i in range(max(1, len(parts) - 2))]
    found: list[int] = []
    for claim in sentences(_CITATION.sub("", answer)):
        words = content_words(claim)
        if not words or not windows:
            continue
        share, number = max((len(words & w) / len(words), -n) for n, w in windows)  # ties: the earlier source
        if share >= min_overlap and -number not in found:
            found.append(-number)
    return found


def with_citations(text: str, numbers: Sequence[int]) -> str:
    """`text` ending with the citations of `numbers`: "… at 180 EUR. [1][2]"."""
    return f"{text.rstrip()} {''.join(f'[{n}]' for n in numbers)}" if numbers else text
