"""What the facade counts for Prometheus (and shows on /status): attempts on each logging
instance and how they ended, cooldowns, the last error seen from each, batch sizes, and the
messages it accepted."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

from hazelog.facade.failover import BackendFailure, InstancePool
from hazelog.web.metrics import ServiceMetrics

T = TypeVar("T")

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass
class LastError:
    error: str
    at: float  # seconds since the epoch


def cooling(pool: InstancePool, url: str) -> float:
    return float(pool.in_cooldown(url))


class FacadeMetrics:
    def __init__(self, metrics: ServiceMetrics, pool: InstancePool) -> None:
        registry = metrics.registry
        self.attempts = Counter(
            "hazelog_facade_backend_attempts",
            "Calls to a logging instance (failover and hedging included), by outcome",
            ["instance", "outcome"],
            registry=registry,
        )
        self.cooldowns = Counter(
            "hazelog_facade_cooldowns",
            "Times a logging instance was put in cooldown after a failure",
            ["instance"],
            registry=registry,
        )
        in_cooldown = Gauge(
            "hazelog_facade_instance_in_cooldown",
            "1 while the facade skips a logging instance that just failed",
            ["instance"],
            registry=registry,
        )
        for url in pool.urls:
            in_cooldown.labels(url).set_function(functools.partial(cooling, pool, url))
            self.cooldowns.labels(url)
        self.batch_size = Histogram(
            "hazelog_facade_batch_size",
            "Messages per request to a logging instance",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.accepted = Counter(
            "hazelog_facade_messages_accepted",
            "Messages a logging instance stored for a client (201 new, 200 repeat)",
            ["status"],
            registry=registry,
        )
        self.last_error: dict[str, LastError] = {}

    def cooled_down(self, url: str) -> None:
        self.cooldowns.labels(url).inc()

    def counted(self, call: Callable[[str], Awaitable[T]]) -> Callable[[str], Awaitable[T]]:
        """`call`, with each attempt counted by instance and outcome."""

        async def attempt(url: str) -> T:
            try:
                result = await call(url)
            except (BackendFailure, TimeoutError) as exc:
                self.attempts.labels(url, "failed").inc()
                self.last_error[url] = LastError(str(exc) or "timed out", time.time())
                raise
            except BaseException:
                # Cancelled (a hedged read another instance answered first) or the caller's.
                self.attempts.labels(url, "abandoned").inc()
                raise
            self.attempts.labels(url, "ok").inc()
            return result

        return attempt
