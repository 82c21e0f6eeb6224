"""Stop sequences over a stream of text pieces, shared by every backend.

A stop sequence may arrive split across pieces ("\\nQues" + "tion:"), so text that could be the
start of one is held back until the next piece decides it; the stop text itself is never emitted.
"""

from __future__ import annotations

from typing import Sequence

from assistant.runtime.repeats import RepeatedLines


class StopScanner:
    def __init__(self, stops: Sequence[str], repeats: bool = False):
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False
        self._repeats = RepeatedLines() if repeats else None  # also end before a repeated line

    def feed(self, piece: str) -> str:
        """Text that is now safe to emit; after a stop sequence (or a repeated line), nothing more."""
        text = self._feed(piece)
        if self._repeats is None:
            return text
        text = self._repeats.feed(text)
        if self.stopped:  # a stop sequence ended generation: no flush will come
            text += self._repeats.flush()
        self.stopped = self.stopped or self._repeats.stopped
        return text

    def _feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        text = self._pending + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, self._pending = True, ""
            return text[:cut]
        hold = max((self._overlap(text, s) for s in self.stops), default=0)
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """At the end of generation the held-back tail was not a stop sequence after all."""
        text, self._pending = ("" if self.stopped else self._pending), ""
        if self._repeats is not None and not self.stopped:
            text = self._repeats.feed(text) + self._repeats.flush()
            self.stopped = self._repeats.stopped
        return text

    @staticmethod
    def _overlap(text: str, stop: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                return size
        return 0
