"""What a logging instance counts for Prometheus: store operations (latency, errors), the
messages it received and stored, batch sizes, and the size of the map as it sees it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram

from hazelog.web.metrics import LATENCY_BUCKETS, ServiceMetrics

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class LoggingMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        registry = metrics.registry
        self.store_latency = Histogram(
            "hazelog_store_operation_duration_seconds",
            "Time of one operation on the Hazelcast map, by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            "hazelog_store_operation_errors",
            "Operations on the Hazelcast map that failed, by operation",
            ["operation"],
            registry=registry,
        )
        self.received_count = 0  # the counter's value, for /status
        self.received = Counter(
            "hazelog_messages_received",
            "Valid messages this instance received (single and batched POSTs)",
            registry=registry,
        )
        self.stored = Counter(
            "hazelog_messages_stored",
            "Messages by what storing them did: created (new), repeat (already there), conflict",
            ["result"],
            registry=registry,
        )
        for result in ("created", "repeat", "conflict"):
            self.stored.labels(result)
        self.batch_size = Histogram(
            "hazelog_batch_size",
            "Messages per POST /batch",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.map_size = Gauge(
            "hazelog_map_size",
            "Entries in the messages map as this instance sees it (-1 when it cannot ask)",
            registry=registry,
        )
        self.map_size.set(-1)

    @contextlib.contextmanager
    def operation(self, name: str) -> Iterator[None]:
        """Time one store operation; count it as an error if it raises."""
        began = time.perf_counter()
        try:
            yield
        except asyncio.CancelledError:
            raise
        except BaseException:
            self.store_errors.labels(name).inc()
            raise
        finally:
            self.store_latency.labels(name).observe(time.perf_counter() - began)
