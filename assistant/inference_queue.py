"""A bounded queue in front of the generator: inference on worker threads, never on the event loop.

At most `max_concurrent` generations run (on CPU one: a second would only halve the speed of both)
and at most `max_queue` requests wait; beyond that `QueueFull` carries a Retry-After estimate so the
API answers 503 immediately instead of letting clients pile up. When the consumer of `stream` goes
away (client disconnect closes the async generator) the cancel event stops the backend within a
token, and the slot is only released once the worker thread has actually finished.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import AsyncIterator, Protocol

import anyio

from assistant.runtime.base import GenerationRequest, GenerationStats, Generator

_DONE = object()


class Admission(Protocol):
    """A shared bound on generations (assistant.shared_limits.DatabaseAdmission): a ticket, or None when full."""

    def enter(self) -> str | None: ...

    def leave(self, ticket: str) -> None: ...


class QueueFull(RuntimeError):
    def __init__(self, retry_after_s: int):
        super().__init__(f"the assistant is busy: {retry_after_s} s until a slot is likely free")
        self.retry_after_s = retry_after_s


class InferenceQueue:
    def __init__(self, max_concurrent: int = 1, max_queue: int = 16, admission: Admission | None = None):
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        # Several API workers: a deployment-wide bound as well (assistant/shared_limits.py), checked first.
        self.admission = admission
        self._executor = ThreadPoolExecutor(max_workers=max_concurrent, thread_name_prefix="generate")
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.running = 0
        self.waiting = 0
        self._mean_s = 5.0  # running mean of a generation's duration, seeds the Retry-After estimate

    @property
    def depth(self) -> int:
        """Requests running or waiting (the queue-depth metric)."""
        return self.running + self.waiting

    def retry_after_s(self) -> int:
        return max(1, math.ceil(self._mean_s * (self.waiting + 1) / self.max_concurrent))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.running >= self.max_concurrent and self.waiting >= self.max_queue:
            raise QueueFull(self.retry_after_s())
        if self.admission is None:
            async with self._local_slot():
                yield
            return
        ticket = await anyio.to_thread.run_sync(self.admission.enter)
        if ticket is None:
            raise QueueFull(self.retry_after_s())
        try:
            async with self._local_slot():
                yield
        finally:
            with anyio.CancelScope(shield=True):  # a disconnect must not leave the ticket counting
                await anyio.to_thread.run_sync(self.admission.leave, ticket)

    @asynccontextmanager
    async def _local_slot(self) -> AsyncIterator[None]:
        semaphore = self._semaphore_for_this_loop()
        self.waiting += 1
        try:
            await semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.running -= 1
            semaphore.release()
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)

    def _semaphore_for_this_loop(self) -> asyncio.Semaphore:
        # asyncio primitives belong to one loop; a test client or a restarted server brings a new one.
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._loop is not loop:
            self._semaphore, self._loop = asyncio.Semaphore(self.max_concurrent), loop
        return self._semaphore

    async def stream(
        self, generator: Generator, request: GenerationRequest, stats: GenerationStats
    ) -> AsyncIterator[str]:
        """Run `generator.stream` on a worker thread and hand its pieces to the event loop as they come."""
        async with self.slot():
            loop = asyncio.get_running_loop()
            pieces: asyncio.Queue = asyncio.Queue()
            cancel = threading.Event()

            def put(item: object) -> None:
                try:
                    loop.call_soon_threadsafe(pieces.put_nowait, item)
                except RuntimeError:  # the loop closed under us (shutdown): nobody is listening
                    cancel.set()

            def work() -> None:
                try:
                    for piece in generator.stream(request, cancel, stats):
                        put(piece)
                except BaseException as exc:  # noqa: BLE001 - re-raised on the loop side
                    put(exc)
                finally:
                    put(_DONE)

            worker = loop.run_in_executor(self._executor, work)
            try:
                while (item := await pieces.get()) is not _DONE:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
            finally:
                cancel.set()
                # Shielded: under a cancelled anyio scope (Litestar's SSE on client disconnect) a plain
                # `await` is cancelled again at once and the slot would be released while the worker
                # still runs. The worker stops within a token, so this wait is short.
                with anyio.CancelScope(shield=True):
                    try:
                        await asyncio.shield(worker)
                    except BaseException:  # noqa: BLE001 - its error was already delivered or is moot
                        pass

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
