"""What a benchmark run measured: single runs, their medians, the targets, and the table."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    """One run of one load: how many answers, in how long, how fast, how many failed."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1)}


@dataclass
class Figure:
    """One row of the table: the median of several runs (errors: their sum)."""

    stage: str
    concurrency: int
    runs: list[Measurement] = field(default_factory=list)
    # Messages in the map while this was measured (GET rows), else None.
    size: int | None = None

    @property
    def rps(self) -> float:
        return statistics.median(run.rps for run in self.runs) if self.runs else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs) if self.runs else 0.0

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs) if self.runs else 0.0

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "concurrency": self.concurrency,
            "size": self.size,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "runs": [run.as_json() for run in self.runs],
        }


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    bound: str
    met: bool | None  # None: not measured in this run

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# Stage names, as the table and the JSON file show them.
BARE = "bare Sanic POST"
DIRECT = "logging direct POST"
CLIENT = "hazelcast client put"
FACADE_POST = "facade POST (e2e)"
# The same, with the members keeping the map in PostgreSQL (write-through).
FACADE_POST_DURABLE = "facade POST (e2e, PostgreSQL)"
FACADE_GET = "facade GET (e2e)"
GET_FACADE = "GET via facade"
GET_DIRECT = "GET logging direct"
PAGE_FIRST = "page of 100 via facade, first"
PAGE_DEEP = "page of 100 via facade, at 90%"
# GET of the whole log through the facade after every member was stopped and started again
# (they load it back from PostgreSQL).
GET_RESTARTED = "GET via facade, after full restart (PostgreSQL)"


@dataclass(frozen=True)
class Recovery:
    """A full restart of the members of the PostgreSQL-backed topology holding `messages`:
    seconds to stop them all, to have them running as a cluster again (from their start),
    and until a GET through the facade returned every message (from their start)."""

    messages: int
    stop_s: float
    members_ready_s: float
    log_back_s: float

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def find(figures: Sequence[Figure], stage: str, concurrency: int) -> Figure | None:
    for figure in figures:
        if figure.stage == stage and figure.concurrency == concurrency and figure.runs:
            return figure
    return None


def find_size(figures: Sequence[Figure], stage: str, size: int) -> Figure | None:
    for figure in figures:
        if figure.stage == stage and figure.size == size and figure.runs:
            return figure
    return None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def evaluate_targets(throughput: Sequence[Figure], by_size: Sequence[Figure]) -> list[Target]:
    """The issue's targets, as ratios within this one run."""

    def rps(stage: str, concurrency: int) -> float | None:
        figure = find(throughput, stage, concurrency)
        return figure.rps if figure else None

    targets = []
    post64 = find(throughput, FACADE_POST, 64)
    share = _ratio(rps(FACADE_POST, 64), rps(DIRECT, 64))
    targets.append(
        Target(
            "e2e POST c64 / logging direct c64",
            share,
            ">= 0.5, 0 errors",
            None if share is None or post64 is None else share >= 0.5 and post64.errors == 0,
        )
    )
    for stage in (DIRECT, FACADE_POST):
        scale = _ratio(rps(stage, 64), rps(stage, 1))
        targets.append(
            Target(f"{stage} c64 / c1", scale, ">= 2", None if scale is None else scale >= 2)
        )
    big, mid = find_size(by_size, GET_FACADE, 100_000), find_size(by_size, GET_FACADE, 10_000)
    growth = _ratio(big.p50_ms if big else None, mid.p50_ms if mid else None)
    targets.append(
        Target(
            "GET via facade p50 100k / 10k",
            growth,
            "<= 12",
            None if growth is None else growth <= 12,
        )
    )
    targets.append(
        Target(
            "GET via facade p50 at 100k (s)",
            big.p50_ms / 1000 if big else None,
            "< 2",
            None if big is None else big.p50_ms < 2000,
        )
    )
    durable = find(throughput, FACADE_POST_DURABLE, 64)
    kept = _ratio(rps(FACADE_POST_DURABLE, 64), rps(FACADE_POST, 64))
    targets.append(
        Target(
            "e2e POST c64 PostgreSQL / in memory",
            kept,
            ">= 0.5, 0 errors",
            None if kept is None or durable is None else kept >= 0.5 and durable.errors == 0,
        )
    )
    return targets


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def throughput_table(figures: Sequence[Figure]) -> str:
    """A Markdown table: readable in the terminal, pastable into the README."""
    rows = [
        "| stage | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        if not f.runs:
            continue
        rows.append(
            f"| {f.stage} | {f.concurrency} | {_fmt(f.rps, 0)} | {_fmt(f.p50_ms, 2)} "
            f"| {_fmt(f.p99_ms, 2)} | {f.errors} |"
        )
    return "\n".join(rows)


def size_table(figures: Sequence[Figure]) -> str:
    rows = [
        "| GET | messages | p50 ms | p99 ms | µs per message (p50) | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in figures:
        if not f.runs or not f.size:
            continue
        per_message = f.p50_ms * 1000 / f.size
        rows.append(
            f"| {f.stage} | {f.size:,} | {_fmt(f.p50_ms, 2)} | {_fmt(f.p99_ms, 2)} "
            f"| {_fmt(per_message, 2)} | {f.errors} |"
        )
    return "\n".join(rows)


def targets_table(targets: Sequence[Target]) -> str:
    rows = ["| target | value | needed | met |", "|---|---:|---|---|"]
    for t in targets:
        value = "-" if t.value is None else f"{t.value:.2f}"
        met = "not measured" if t.met is None else ("yes" if t.met else "NO")
        rows.append(f"| {t.name} | {value} | {t.bound} | {met} |")
    return "\n".join(rows)


def recovery_table(recoveries: Sequence[Recovery]) -> str:
    rows = [
        "| full restart, PostgreSQL | messages | stop s | members up s | log back s |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in recoveries:
        rows.append(
            f"| all 3 members stopped and started | {r.messages:,} | {_fmt(r.stop_s)} "
            f"| {_fmt(r.members_ready_s)} | {_fmt(r.log_back_s)} |"
        )
    return "\n".join(rows)


def report_text(
    throughput: Sequence[Figure],
    by_size: Sequence[Figure],
    targets: Sequence[Target],
    recoveries: Sequence[Recovery] = (),
) -> str:
    parts = []
    if any(f.runs for f in throughput):
        parts.append(throughput_table(throughput))
    if any(f.runs for f in by_size):
        parts.append(size_table(by_size))
    if recoveries:
        parts.append(recovery_table(recoveries))
    parts.append(targets_table(targets))
    return "\n\n".join(parts) + "\n"
