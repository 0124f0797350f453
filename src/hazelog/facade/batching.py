"""Group commit for the facade's POSTs: while some batches are on their way to logging
instances, newly accepted messages wait and then travel together in the next one.

At low load nothing waits (a message goes out at once, alone); under load, one HTTP request
carries many messages, so the facade and the logging instances spend their time on messages
rather than on HTTP requests. No timer: a batch is whatever queued up meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P")
R = TypeVar("R")

# send(payloads, seconds_left) -> one result per payload, in order; raising fails them all.
Send = Callable[[list[P], float], Awaitable[Sequence[R]]]


class BatcherError(Exception):
    """A payload the batcher did not get answered (no backend said anything about it)."""


class BatcherClosed(BatcherError):
    """The server is stopping: nothing new is taken."""


class BatcherFull(BatcherError):
    """`max_pending` payloads are held already: the caller should come back later."""


class BatchMismatch(BatcherError):
    """send() answered a batch with another number of results than payloads."""


@dataclass
class _Waiting(Generic[P, R]):
    payload: P
    size: int
    expires_at: float
    future: asyncio.Future[R]


class Batcher(Generic[P, R]):
    def __init__(
        self,
        send: Send[P, R],
        *,
        max_in_flight: int,
        max_batch: int,
        max_size: int,
        size: Callable[[P], int] = lambda _: 0,
        max_pending: int | None = None,
    ) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        if max_pending is not None and max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        self._send = send
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._max_size = max_size
        self._size = size
        self._queue: deque[_Waiting[P, R]] = deque()
        self._in_flight = 0
        self._max_pending = max_pending
        self._sending = 0  # payloads in the batches in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Payloads queued for the next batch."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        """Payloads held: queued or on their way."""
        return len(self._queue) + self._sending

    @property
    def full(self) -> bool:
        """`max_pending` payloads are held: submit would raise BatcherFull."""
        return self._max_pending is not None and self.pending >= self._max_pending

    def full_detail(self) -> str:
        """Why a full batcher refuses: it holds exactly max_pending payloads then."""
        return f"{self._max_pending} messages are waiting to be stored already"

    async def submit(self, payload: P, deadline: float) -> R:
        """The payload's result, once the batch it went out in is answered; `deadline`
        seconds from now bound its waiting and its sending together.

        Past `max_pending` payloads held, BatcherFull at once: queueing more would only make
        every client wait longer for the same throughput."""
        if self._closed:
            raise BatcherClosed("the server is stopping")
        if self.full:
            raise BatcherFull(self.full_detail())
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Waiting(payload, self._size(payload), loop.time() + deadline, future))
        self._start_batches()
        return await future

    def _next_batch(self) -> list[_Waiting[P, R]]:
        batch: list[_Waiting[P, R]] = []
        total = 0
        while self._queue and len(batch) < self._max_batch:
            waiting = self._queue[0]
            if waiting.future.done():  # its client went away while it waited
                self._queue.popleft()
                continue
            # A payload too big to share a batch still goes, alone.
            if batch and total + waiting.size > self._max_size:
                break
            batch.append(self._queue.popleft())
            total += waiting.size
        return batch

    def _start_batches(self) -> None:
        while not self._closed and self._in_flight < self._max_in_flight:
            batch = self._next_batch()
            if not batch:
                return
            self._in_flight += 1
            self._sending += len(batch)
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting[P, R]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            left = min(waiting.expires_at for waiting in batch) - loop.time()
            results = await self._send([waiting.payload for waiting in batch], left)
            if len(results) != len(batch):
                raise BatchMismatch(f"{len(results)} results for a batch of {len(batch)}")
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.future.cancel()
            raise
        except Exception as exc:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
        else:
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)
        finally:
            self._in_flight -= 1
            self._sending -= len(batch)
            self._start_batches()

    async def close(self) -> None:
        """Cancel what is still waiting or on its way (the server has stopped)."""
        self._closed = True
        while self._queue:
            self._queue.popleft().future.cancel()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
