"""Greedy answers decoded together (batched_lookup.py): concurrent streams by one decode thread (`DecodeLoop`), a
list of requests on the calling thread (`decode_all`, the scorecard's and the teacher's batches).

When several clients chat at once, the inference queue lets up to `generator.batch_streams` streams run
(assembly.generation_slots); each calls the backend's `stream` on its own worker thread. Decoded one after another (a lock around the
model) each waits for all the others; here each stream's request is handed to one decode thread, which
prefills it alone (its first token then reaches the client), then adds it to the set that batched prompt lookup
(batched_lookup.py) advances one pass at a time, and sends each stream its text as its tokens arrive. A pass
costs about the same for one answer as for eight (the weights are read once), so streams no longer queue for
decoding. The tokens are each stream's own (the same tests as the scorecard's path).

Adapters are selected on the shared model, so the streams of one pass share an adapter: a request for another
one waits until the live set drains, and no request behind it in line is admitted before it (first come, first
served, no starvation). A set cancel event (client gone) or a consumer that stops reading drops its answer at
the next pass. Sampled streams, and the scorecard's `decode_together`, take the backend's lock as before; the
loop takes the same lock for each pass, so they interleave between passes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from assistant.runtime.base import GenerationRequest, GenerationStats

log = logging.getLogger(__name__)
_END = object()


@dataclass
class _Stream:
    request: GenerationRequest
    cancel: threading.Event
    stats: GenerationStats
    out: queue.Queue = field(default_factory=queue.Queue)  # text pieces, then an exception or _END
    abandoned: bool = False  # the consumer stopped reading
    answer: object = None
    completion: object = None


class DecodeLoop:
    def __init__(self, backend, width: int):
        """`backend`: the TransformersGenerator (its model, lock, prefill and adapter selection); `width`: streams
        decoded at once."""
        self.backend, self.width = backend, width
        self._pending: deque[_Stream] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.passes = 0  # batched passes run (tests and benches read it)
        self.widest = 0  # most answers one pass served

    def stream(self, request: GenerationRequest, cancel: threading.Event, stats: GenerationStats) -> Iterator[str]:
        item = _Stream(request, cancel, stats)
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="decode-loop", daemon=True)
                self._thread.start()
            self._pending.append(item)
            self._ready.notify()
        try:
            while True:
                piece = item.out.get()
                if piece is _END:
                    return
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            item.abandoned = True

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()

    # --- the decode thread --------------------------------------------------------------------------------------
    def _run(self) -> None:
        from assistant.runtime.batched_lookup import BatchedLookup

        backend, live, adapter = self.backend, [], None
        together = BatchedLookup(backend.model, backend.lookup)
        while True:
            with self._ready:
                while not self._pending and not live and not self._closed:
                    self._ready.wait()
                if self._closed:
                    for item in live + list(self._pending):
                        item.out.put(_END)
                    return
                if not live:
                    adapter = self._pending[0].request.adapter
                admitted = []  # first come, first served: the line stops at a request for another adapter
                while self._pending and len(live) + len(admitted) < self.width \
                        and self._pending[0].request.adapter == adapter:
                    admitted.append(self._pending.popleft())
            answers = []
            try:
                # The model (with LoRA layers injected in place by a later adapter load) is read at every pass.
                with backend._lock, backend.torch.inference_mode(), backend._adapter(adapter):
                    for item in admitted:
                        if self._start(together, item):
                            live.append(item)
                    answers = [item.answer for item in live if not item.answer.done]
                    gained = together.step(answers) if answers else []
                    self.passes += bool(answers)
                    self.widest = max(self.widest, len(answers))
            except Exception as exc:  # noqa: BLE001 - every waiting consumer gets the error, the loop goes on
                log.exception("decode loop: a batched pass failed")
                for item in live + [i for i in admitted if i not in live]:
                    item.out.put(exc)
                live = []
                continue
            new_by_answer = dict(zip(map(id, answers), gained))
            still = []
            for item in live:
                if item.cancel.is_set() or item.abandoned:
                    item.stats.finish_reason = "cancelled"
                    item.out.put(_END)
                    continue
                for piece in item.completion.take(new_by_answer.get(id(item.answer), [])):
                    item.out.put(piece)
                item.stats.completion_tokens = len(item.completion.generated)
                item.answer.done = item.answer.done or item.completion.done
                if item.answer.done:
                    self._finish(item)
                else:
                    still.append(item)
            live = still

    def _start(self, together, item: _Stream) -> bool:
        """Prefill one stream and send its first piece; False if it ended there (error, cancel, one token)."""
        if item.cancel.is_set() or item.abandoned:
            item.stats.finish_reason = "cancelled"
            item.out.put(_END)
            return False
        try:
            answer, completion, text, stats = self.backend._start_answer(together, item.request)
        except Exception as exc:  # noqa: BLE001 - a prompt too long for the window: that stream's error
            item.out.put(exc)
            return False
        item.stats.prompt_tokens, item.stats.completion_tokens = stats.prompt_tokens, len(completion.generated)
        item.stats.finish_reason = "length"
        item.answer, item.completion = answer, completion
        if text:
            item.out.put(text)
        if answer.done:
            self._finish(item)
            return False
        return True

    @staticmethod
    def _finish(item: _Stream) -> None:
        tail = item.completion.end(item.stats)
        if tail:
            item.out.put(tail)
        item.out.put(_END)


def decode_all(backend, requests: list[GenerationRequest], width: int,
               on_done: Callable[[int], None] | None = None) -> list[tuple[str, GenerationStats]]:
    """Greedy answers for a list of requests of one adapter (the scorecard's and the teacher's batches), up to
    `width` decoded at once on the calling thread: each prompt is prefilled alone, as a stream's is, one pass per
    step serves every unfinished answer, and a finished answer's place goes to the next request."""
    from assistant.runtime.batched_lookup import BatchedLookup

    torch, waiting, adapter = backend.torch, list(range(len(requests))), requests[0].adapter
    results: list = [None] * len(requests)
    live: dict[int, tuple] = {}  # request index -> (Answer, Completion, text so far, stats)
    with backend._lock, torch.inference_mode(), backend._adapter(adapter):
        together = BatchedLookup(backend.model, backend.lookup)
        while waiting or live:
            while waiting and len(live) < width:
                index = waiting.pop(0)
                live[index] = backend._start_answer(together, requests[index])
            order = list(live)
            for index, new in zip(order, together.step([live[i][0] for i in order])):
                answer, completion, text, stats = live[index]
                text += "".join(completion.take(new))
                answer.done = answer.done or completion.done
                if answer.done:
                    results[index] = (text + completion.end(stats), stats)
                    del live[index]
                    if on_done:
                        on_done(1)
                else:
                    live[index] = (answer, completion, text, stats)
    return results
