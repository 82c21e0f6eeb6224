"""Many generations at once, for offline jobs (evaluation): batched where the backend can batch.

A backend may offer `decode_together(requests, width, on_done)` (transformers: up to `width` answers
decoded at once by batched prompt lookup, a finished answer's place refilled, the streamed tokens) or
`generate_batch(requests) -> [(text, stats)]` (openvino: padded batches; openai: concurrent requests the
server batches itself), each for requests that share one adapter.
Backends without it (the fake), and `batch_size` 1, stream one request at a time through the backend's
`stream`, the decoding serving uses: the scorecard's default, so it scores what /v1/chat returns.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from assistant.runtime.base import GenerationRequest, GenerationStats, Generator

Done = Callable[[int], None]  # called with the number of requests just finished


def generate_many(
    generator: Generator, requests: Sequence[GenerationRequest], batch_size: int = 8, on_done: Done | None = None
) -> list[tuple[str, GenerationStats]]:
    results: list[tuple[str, GenerationStats] | None] = [None] * len(requests)
    batch = getattr(generator, "generate_batch", None)
    # Sampled requests are streamed too: padded batches decode greedily only.
    if batch is None or batch_size <= 1 or any(r.temperature > 0 for r in requests):
        for index, request in enumerate(requests):
            stats = GenerationStats()
            results[index] = ("".join(generator.stream(request, threading.Event(), stats)), stats)
            if on_done:
                on_done(1)
        return [r for r in results if r is not None]
    by_adapter: dict[str | None, list[int]] = {}
    for index, request in enumerate(requests):
        by_adapter.setdefault(request.adapter, []).append(index)
    together = getattr(generator, "decode_together", None)
    for indices in by_adapter.values():
        if together is not None:
            for index, result in zip(indices, together([requests[i] for i in indices], batch_size, on_done)):
                results[index] = result
            continue
        # Similar lengths side by side: less padding to compute in each batch.
        indices.sort(key=lambda i: len(requests[i].prompt))
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            for index, result in zip(chunk, batch([requests[i] for i in chunk])):
                results[index] = result
            if on_done:
                on_done(len(chunk))
    return [r for r in results if r is not None]
