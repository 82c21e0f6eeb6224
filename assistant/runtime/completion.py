"""One completion's token ids in, the text a client receives out: shared by the streamed and the batched
decoding of the transformers backend, so both end an answer at the same token and emit the same text.

An EOS token ends it (not counted), so does the token budget, and so does a stop sequence or a repeated line
(StopScanner; the stop text is never emitted). The whole completion is decoded at each token because a
character may span several tokens; a completion whose text ends in half a character waits for the rest.
"""

from __future__ import annotations

from typing import Iterator

from assistant.runtime.base import GenerationRequest, GenerationStats
from assistant.runtime.stops import StopScanner


class Completion:
    def __init__(self, tokenizer, eos_ids: set[int], request: GenerationRequest, budget: int):
        self.tokenizer, self.eos_ids, self.budget = tokenizer, eos_ids, budget
        self.scanner = StopScanner(request.stop, request.stop_repeats)
        self.generated: list[int] = []
        self.emitted = ""  # decoded text already handed to the scanner
        self.finish = "length"
        self.done = False

    def add(self, token: int) -> str:
        """The text now safe to emit after `token` ("" if none); sets `done` when the completion has ended."""
        if token in self.eos_ids:
            self.finish, self.done = "stop", True
            return ""
        self.generated.append(token)
        text = self.tokenizer.decode(self.generated, skip_special_tokens=True)
        piece = ""
        if not text.endswith("\ufffd"):  # else half a multi-byte character; wait for the rest
            piece = self.scanner.feed(text[len(self.emitted):])
            self.emitted = text
            if self.scanner.stopped:
                self.finish, self.done = "stop", True
                return piece
        if len(self.generated) >= self.budget:
            self.done = True
        return piece

    def take(self, tokens: list[int]) -> Iterator[str]:
        """`add` for the tokens one pass produced, up to the one that ends the completion; the non-empty pieces."""
        for token in tokens:
            piece = self.add(token)
            if piece:
                yield piece
            if self.done:
                return

    def end(self, stats: GenerationStats) -> str:
        """`close`, with the tokens made and the finish reason written into `stats`."""
        tail = self.close()
        stats.completion_tokens, stats.finish_reason = len(self.generated), self.finish
        return tail

    def close(self) -> str:
        """What was held back (a possible stop prefix, a character still incomplete) is final now."""
        if self.scanner.stopped:
            return ""
        rest = self.tokenizer.decode(self.generated, skip_special_tokens=True)[len(self.emitted):] if self.generated else ""
        tail = self.scanner.feed(rest) + self.scanner.flush()
        if self.scanner.stopped:
            self.finish = "stop"
        return tail
