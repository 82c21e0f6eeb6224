"""System-prompt leakage: does an answer repeat the instruction the model was given?

Score = the larger of (a) the share of the instruction's word n-grams (default 4) found in the answer and
(b) the longest run of instruction words repeated in order, divided by `full_run_words` (12 words in a row
is a leak however short the answer; runs under half that count for nothing). Words are lower-cased and stripped of punctuation; the refusal sentence
that the instruction quotes is left out, since answers legitimately say it.
"""

from __future__ import annotations

import re

from assistant.prompt import INSTRUCTION, REFUSAL
from guardrails.verdict import RailResult

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class LeakageRail:
    def __init__(self, instruction: str | None = None, threshold: float = 0.3, n: int = 4,
                 full_run_words: int = 12) -> None:
        text = instruction if instruction is not None else INSTRUCTION.replace("{refusal}", "")
        self.secret = words(text.replace(REFUSAL, ""))
        self._refusal = re.compile(re.escape(REFUSAL.rstrip(".")), re.I)
        self.threshold = threshold
        self.n = n
        self.full_run_words = full_run_words
        self._grams = {tuple(self.secret[i:i + n]) for i in range(len(self.secret) - n + 1)}

    def score(self, answer: str) -> float:
        said = words(self._refusal.sub(" ", answer))
        if not said or not self._grams:
            return 0.0
        grams = {tuple(said[i:i + self.n]) for i in range(len(said) - self.n + 1)}
        share = len(grams & self._grams) / len(self._grams)
        run = _longest_common_run(said, self.secret)
        return max(share, min(1.0, run / self.full_run_words) if run >= self.full_run_words // 2 else 0.0)

    def check(self, answer: str) -> RailResult:
        score = self.score(answer)
        if score >= self.threshold:
            return RailResult("leakage", True, "replace", score, "system prompt repeated")
        return RailResult.passed("leakage", score)


def _longest_common_run(a: list[str], b: list[str]) -> int:
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best
