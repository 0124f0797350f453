"""The storage hop alone: hazelcast-python-client writing to the map from this process with
N concurrent asyncio tasks; and filling the map quickly (put_all) for the GET-by-size runs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from hazelcast.asyncio import HazelcastClient, Map
from hazelcast.core import HazelcastJsonValue

from hazelog.logging_service.store import StoredMessage, encode_value
from hazelog_tools.bench.results import Measurement

FILL_BATCH = 5_000
QUIET_INTERVAL = 0.5
QUIET_CHECKS = 20


class Storage:
    def __init__(self, client: Any, messages: Map[str, HazelcastJsonValue]) -> None:
        self._client = client
        self.map = messages
        self._closed = False

    @classmethod
    async def connect(cls, cluster_name: str, members: Sequence[str], map_name: str) -> Storage:
        client = await HazelcastClient.create_and_start(
            cluster_name=cluster_name, cluster_members=list(members)
        )
        messages: Map[str, HazelcastJsonValue] = await client.get_map(map_name)
        return cls(client, messages)

    async def close(self) -> None:
        """Shut the client down (again: nothing)."""
        if not self._closed:
            self._closed = True
            await self._client.shutdown()

    async def put_load(self, concurrency: int, duration: float) -> Measurement:
        """`concurrency` tasks storing fresh messages back to back for `duration` seconds,
        each with put_if_absent of the encoded value, exactly as a logging instance does."""
        latencies: list[float] = []
        errors = 0
        started = time.perf_counter()
        ends_at = started + duration

        async def worker() -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < ends_at:
                n += 1
                message = StoredMessage(str(uuid.uuid4()), f"bench message {n}", time.time_ns())
                begin = time.perf_counter()
                try:
                    await self.map.put_if_absent(message.uuid, encode_value(message))
                except Exception:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - begin)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return Measurement(
            requests=len(latencies),
            seconds=elapsed,
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            errors=errors,
        )

    async def clear(self) -> None:
        # Requests a load generator left in flight when it stopped still land for a moment
        # after it exits: wait until the map stops growing, so none lands after the clear.
        previous = -1
        for _ in range(QUIET_CHECKS):
            size = await self.size()
            if size == previous:
                break
            previous = size
            await asyncio.sleep(QUIET_INTERVAL)
        await self.map.clear()

    async def size(self) -> int:
        count: int = await self.map.size()
        return count

    async def fill(self, count: int, first: int = 0) -> int:
        """Add `count` messages (numbered from `first`, accepted in that order) with put_all.
        Message n is accepted at the returned base + n."""
        base = time.time_ns()
        for start in range(first, first + count, FILL_BATCH):
            batch = {}
            for n in range(start, min(start + FILL_BATCH, first + count)):
                message = StoredMessage(str(uuid.uuid4()), f"stored message {n}", base + n)
                batch[message.uuid] = encode_value(message)
            await self.map.put_all(batch)
        return base


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
