"""When a warm-up is done: the members' JIT has compiled what the load runs.

A member's JIT takes minutes of CPU on this kind of machine (2 cores shared by three members
per topology, the services and the load): measured on the PostgreSQL-backed members at c64,
their compiler threads took 16 of 27 CPU-seconds in the first 20 s of load and under 1 by
the fifth 20 s. A fixed one-second warm-up compared a cold durable topology (more code to
compile: JDBC, the MapStore's steps) with a warmer in-memory one. So each stage warms up in
slices (runs as long as the measured ones) until its throughput stops climbing."""

from __future__ import annotations

from collections.abc import Sequence

# Throughput noise between two slices of a settled stage on this machine is several percent.
CLIMB = 0.05


def settled(rates: Sequence[float], climb: float = CLIMB) -> bool:
    """True when the last two slices both stay within `climb` of the best slice before them:
    the throughput no longer climbs (a fall counts as settled: that is noise, not warming)."""
    if len(rates) < 3:
        return False
    best_before = max(rates[:-2])
    return all(rate <= best_before * (1 + climb) for rate in rates[-2:])


def slices(minimum_s: float, maximum_s: float, slice_s: float) -> tuple[int, int]:
    """(fewest, most) slices for a warm-up of at least `minimum_s` and at most `maximum_s`."""
    fewest = max(3, -(-minimum_s // slice_s))
    most = max(fewest, maximum_s // slice_s)
    return int(fewest), int(most)
