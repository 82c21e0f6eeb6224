import asyncio
import threading
import time

import pytest

from assistant.inference_queue import InferenceQueue, QueueFull
from assistant.runtime.base import GenerationRequest, GenerationStats


class SlowCounter:
    """A stand-in generator: one token per `delay_s`, recording how it ended and on which thread."""

    name, context_window = "slow", 512

    def __init__(self, tokens=50, delay_s=0.02):
        self.tokens, self.delay_s = tokens, delay_s
        self.threads, self.ended = set(), []

    def stream(self, request, cancel, stats=None):
        self.threads.add(threading.get_ident())
        for i in range(self.tokens):
            if cancel.is_set():
                self.ended.append("cancelled")
                return
            time.sleep(self.delay_s)
            yield f"t{i} "
        self.ended.append("done")


def request():
    return GenerationRequest(prompt="p", max_new_tokens=10)


def test_pieces_arrive_in_order_from_a_worker_thread():
    generator, queue = SlowCounter(tokens=5, delay_s=0), InferenceQueue()

    async def run():
        return [p async for p in queue.stream(generator, request(), GenerationStats())]

    assert asyncio.run(run()) == [f"t{i} " for i in range(5)]
    assert threading.get_ident() not in generator.threads


def test_closing_the_stream_cancels_generation_and_frees_the_slot():
    generator, queue = SlowCounter(tokens=1000), InferenceQueue()

    async def run():
        stream = queue.stream(generator, request(), GenerationStats())
        assert (await stream.__anext__()) == "t0 "
        await stream.aclose()
        return queue.depth

    assert asyncio.run(run()) == 0
    assert generator.ended == ["cancelled"]


def test_full_queue_refuses_with_retry_after_and_the_event_loop_stays_responsive():
    generator, queue = SlowCounter(tokens=10, delay_s=0.02), InferenceQueue(max_concurrent=1, max_queue=1)

    async def consume():
        return [p async for p in queue.stream(generator, request(), GenerationStats())]

    async def run():
        first = asyncio.create_task(consume())
        second = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # one runs, one waits
        ticks = 0
        with pytest.raises(QueueFull) as refused:
            async for _ in queue.stream(generator, request(), GenerationStats()):
                pass
        while not first.done():  # the loop keeps turning while a generation runs on its thread
            ticks += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(first, second)
        return refused.value.retry_after_s, ticks

    retry_after, ticks = asyncio.run(run())
    assert retry_after >= 1
    assert ticks > 5
    assert generator.ended == ["done", "done"]


def test_generator_errors_reach_the_consumer():
    class Broken(SlowCounter):
        def stream(self, request, cancel, stats=None):
            yield "a"
            raise RuntimeError("backend fell over")

    async def run():
        return [p async for p in InferenceQueue().stream(Broken(), request(), GenerationStats())]

    with pytest.raises(RuntimeError, match="fell over"):
        asyncio.run(run())
