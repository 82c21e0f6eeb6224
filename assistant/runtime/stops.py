"""Stop sequences over a stream of text pieces, shared by every backend.

A stop sequence may arrive split across pieces ("\\nQues" + "tion:"), so text that could be the
start of one is held back until the next piece decides it; the stop text itself is never emitted.
"""

from __future__ import annotations

from typing import Sequence


class StopScanner:
    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Text that is now safe to emit; after a stop sequence, nothing more."""
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
        return text

    @staticmethod
    def _overlap(text: str, stop: str) -> int:
        """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                return size
        return 0
