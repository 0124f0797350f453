"""Which logging instance to ask, and in what order: random among the healthy ones, then the
ones cooling down after a failure (soonest back first), all within one overall deadline.

No HTTP here: `call_with_failover` takes any coroutine function of a URL, so the policy is
testable with plain fakes and an injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

Clock = Callable[[], float]
T = TypeVar("T")

log = logging.getLogger("hazelog.facade")


class BackendFailure(Exception):
    """An instance could not serve the request (connection error, timeout, 5xx, garbage);
    the same request may be tried on another instance.

    `unreachable` means nothing listens there (the connection itself failed): unlike an
    instance that answered badly or slowly, it is not worth asking again within a request.
    """

    def __init__(self, detail: str, *, unreachable: bool = False) -> None:
        super().__init__(detail)
        self.unreachable = unreachable


@dataclass(frozen=True)
class Attempt:
    url: str
    error: str

    def as_json(self) -> dict[str, str]:
        return {"url": self.url, "error": self.error}


class NoInstanceAvailable(Exception):
    def __init__(self, detail: str, attempts: Sequence[Attempt]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attempts = list(attempts)


class InstancePool:
    def __init__(
        self,
        urls: Sequence[str],
        cooldown: float,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        on_cooldown: Callable[[str], None] | None = None,
    ) -> None:
        if not urls:
            raise ValueError("at least one logging instance is needed")
        self.urls = list(dict.fromkeys(urls))
        self.cooldown = cooldown
        self._clock = clock
        self._rng = rng or random.Random()
        self._cooling_until: dict[str, float] = {}
        self._on_cooldown = on_cooldown

    def in_cooldown(self, url: str) -> bool:
        return self._cooling_until.get(url, float("-inf")) > self._clock()

    def order(self) -> list[str]:
        """Healthy instances shuffled, then those in cooldown: never skipped outright, since
        a cooling instance beats answering 503 when it is all there is."""
        healthy = [url for url in self.urls if not self.in_cooldown(url)]
        self._rng.shuffle(healthy)
        cooling = sorted(
            (url for url in self.urls if self.in_cooldown(url)),
            key=lambda url: self._cooling_until[url],
        )
        return healthy + cooling

    def mark_failed(self, url: str) -> None:
        self._cooling_until[url] = self._clock() + self.cooldown
        if self._on_cooldown is not None:
            self._on_cooldown(url)

    def mark_ok(self, url: str) -> None:
        self._cooling_until.pop(url, None)


async def call_with_failover(
    pool: InstancePool,
    call: Callable[[str], Awaitable[T]],
    deadline: float,
    retry_pause: float = 0.2,
) -> T:
    """Return the first successful `call(url)`, going through the instances in pool order.

    BackendFailure or a timeout moves on to the next instance (and cools the failed one
    down); any other exception is the caller's business and propagates at once. When every
    instance has failed but one of them is alive (it timed out or answered badly, as the
    last live instance does while its member takes over the partitions of dead ones),
    another round follows after `retry_pause`, within `deadline`: the calls are idempotent
    (same UUID). When nothing listens anywhere, the answer comes at once.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    attempts: list[Attempt] = []
    while True:
        any_alive = False
        for url in pool.order():
            remaining = ends_at - loop.time()
            if remaining <= 0:
                raise NoInstanceAvailable(
                    f"deadline of {deadline:g}s exceeded after {len(attempts)} attempt(s)",
                    attempts,
                )
            try:
                async with asyncio.timeout(remaining):
                    result = await call(url)
            except BackendFailure as exc:
                attempts.append(Attempt(url, str(exc)))
                any_alive = any_alive or not exc.unreachable
            except TimeoutError:
                attempts.append(Attempt(url, "timed out"))
                any_alive = True
            else:
                pool.mark_ok(url)
                return result
            pool.mark_failed(url)
            log.warning("logging instance %s failed: %s", url, attempts[-1].error)
        if not any_alive or loop.time() + retry_pause >= ends_at:
            break
        await asyncio.sleep(retry_pause)
    raise NoInstanceAvailable(f"all {len(attempts)} logging instance(s) failed", attempts)


async def call_with_hedging(
    pool: InstancePool,
    call: Callable[[str], Awaitable[T]],
    deadline: float,
    hedge_after: float,
    retry_pause: float = 0.2,
) -> T:
    """Like call_with_failover, for reads whose time grows with the log: an attempt with no
    answer after `hedge_after` seconds is not abandoned, the next instance is asked as well,
    and the first answer wins. A hung instance is bypassed as quickly as before, while a
    GET that is merely slow (a big log) is not cut off and retried from scratch elsewhere.

    A failure (BackendFailure, timeout) starts the next attempt at once; `deadline` bounds
    them all; any other exception propagates at once. As in call_with_failover, when every
    instance has failed but one of them is alive, another round follows after `retry_pause`.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + deadline
    waiting = pool.order()
    attempts: list[Attempt] = []
    running: dict[asyncio.Future[T], tuple[str, float]] = {}
    any_alive = False

    def start_next() -> None:
        if waiting:
            url = waiting.pop(0)
            running[asyncio.ensure_future(call(url))] = (url, loop.time())

    try:
        start_next()
        while loop.time() < ends_at:
            if not running:
                # Every instance failed this round: again only if one of them is there.
                if not any_alive or loop.time() + retry_pause >= ends_at:
                    break
                await asyncio.sleep(retry_pause)
                any_alive = False
                waiting.extend(pool.order())
                start_next()
                continue
            wait_for = ends_at - loop.time()
            if waiting:
                newest = max(started for _, started in running.values())
                wait_for = min(wait_for, max(0.0, newest + hedge_after - loop.time()))
            done, _ = await asyncio.wait(
                set(running), timeout=wait_for, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                start_next()  # the newest attempt is slow: ask another instance as well
                continue
            for task in done:
                url, _ = running.pop(task)
                try:
                    result = task.result()
                except (BackendFailure, TimeoutError) as exc:
                    attempts.append(Attempt(url, str(exc) or "timed out"))
                    any_alive = any_alive or not getattr(exc, "unreachable", False)
                    pool.mark_failed(url)
                    log.warning("logging instance %s failed: %s", url, attempts[-1].error)
                    start_next()
                    continue
                pool.mark_ok(url)
                # The ones still running gave no answer within hedge_after: cool them down.
                for other, started in running.values():
                    if loop.time() - started >= hedge_after:
                        pool.mark_failed(other)
                return result
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(set(running))
            for task in running:
                if not task.cancelled():
                    task.exception()  # retrieved: a late failure is not worth a warning
    if not running:
        raise NoInstanceAvailable(f"all {len(attempts)} logging instance(s) failed", attempts)
    for url, _ in running.values():
        attempts.append(Attempt(url, "timed out"))
        pool.mark_failed(url)
    raise NoInstanceAvailable(
        f"deadline of {deadline:g}s exceeded after {len(attempts)} attempt(s)", attempts
    )
