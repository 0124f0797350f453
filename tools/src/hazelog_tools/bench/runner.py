"""One benchmark run: start what is measured, run every load the plan names (each at every
concurrency, `runs` times, interleaved so machine noise hits all stages alike), stop it all."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hazelog_tools.bench import warmup
from hazelog_tools.bench.postgres import throwaway_postgres
from hazelog_tools.bench.processes import Topology, bare_sanic, local_topology
from hazelog_tools.bench.results import (
    BARE,
    CLIENT,
    DIRECT,
    FACADE_GET,
    FACADE_POST,
    FACADE_POST_DURABLE,
    GET_DIRECT,
    GET_FACADE,
    GET_RESTARTED,
    PAGE_DEEP,
    PAGE_FIRST,
    Figure,
    Measurement,
    Recovery,
    Target,
    evaluate_targets,
)
from hazelog_tools.bench.storage import Storage
from hazelog_tools.bench.wrk import Load, WrkRun, find_wrk, run_wrk, write_scripts

Progress = Callable[[str], None]


class Stage(StrEnum):
    BARE = "bare"
    DIRECT = "direct"
    CLIENT = "client"
    POST = "post"
    GET = "get"
    SIZES = "sizes"
    PAGES = "pages"
    # The facade's POST with the members keeping the map in PostgreSQL (a second topology).
    DURABLE = "durable"
    # GET of the biggest size after a full restart of that topology's members.
    RESTART = "restart"

    @property
    def needs_cluster(self) -> bool:
        """Runs against the in-memory topology."""
        return self not in (Stage.BARE, Stage.DURABLE, Stage.RESTART)

    @property
    def needs_database(self) -> bool:
        """Runs against the PostgreSQL-backed topology."""
        return self in (Stage.DURABLE, Stage.RESTART)


@dataclass(frozen=True)
class Plan:
    stages: tuple[Stage, ...] = tuple(Stage)
    concurrency: tuple[int, ...] = (1, 16, 64)
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    # Seconds per run (throughput stages), per run of a GET-by-size, and of each warm-up.
    duration: float = 5.0
    size_duration: float = 5.0
    warmup: float = 1.0
    warmup_max: float = 90.0
    runs: int = 3
    # Messages in the map while the end-to-end GET's throughput is measured.
    get_size: int = 1_000
    jar: Path = Path(".cache/artifacts/hazelcast-5.7.0.jar")
    work_dir: Path = Path("bench-results/work")

    @property
    def needs_cluster(self) -> bool:
        return any(stage.needs_cluster for stage in self.stages)

    @property
    def needs_database(self) -> bool:
        return any(stage.needs_database for stage in self.stages)

    @property
    def restart_size(self) -> int:
        """Messages in the log restarted by the restart stage: the biggest size."""
        return max(self.sizes, default=self.get_size)


# The PostgreSQL-backed topology runs next to the in-memory one: its own cluster.
DURABLE_CLUSTER_NAME = "hazelog-bench-durable"
# Bound on the wait for a restarted log to be back whole (it only turns "never" into failure).
RECOVERY_TIMEOUT = 600.0
RECOVERY_POLL = 0.2


@dataclass
class Report:
    throughput: list[Figure] = field(default_factory=list)
    by_size: list[Figure] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def targets(self) -> list[Target]:
        return evaluate_targets(self.throughput, self.by_size)

    def as_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "throughput": [f.as_json() for f in self.throughput if f.runs],
            "get_by_size": [f.as_json() for f in self.by_size if f.runs],
            "full_restart": [r.as_json() for r in self.recoveries],
            "targets": [t.as_json() for t in self.targets],
        }


def _loadavg() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _meta(plan: Plan) -> dict[str, Any]:
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "plan": {
            "stages": [s.value for s in plan.stages],
            "concurrency": list(plan.concurrency),
            "sizes": list(plan.sizes),
            "duration_s": plan.duration,
            "size_duration_s": plan.size_duration,
            "warmup_s": plan.warmup,
            "warmup_max_s": plan.warmup_max,
            "runs": plan.runs,
            "get_size": plan.get_size,
        },
        "loadavg_start": _loadavg(),
    }


class Bench:
    def __init__(self, plan: Plan, progress: Progress) -> None:
        self.plan = plan
        self.progress = progress
        self.wrk = find_wrk()
        self.scripts = write_scripts(plan.work_dir / "lua")
        self.report = Report(meta=_meta(plan))

    async def wrk_load(self, url: str, load: Load, concurrency: int, seconds: float) -> Measurement:
        # A GET of a big log may take long: let one request run for many times the run.
        timeout = max(10.0, 4 * seconds)
        run = WrkRun(url, load, concurrency, seconds, timeout)
        return await run_wrk(self.wrk, run, self.scripts)

    async def run(self) -> Report:
        started = time.monotonic()
        try:
            await self._run()
        finally:
            self.report.meta["loadavg_end"] = _loadavg()
            self.report.meta["wall_s"] = round(time.monotonic() - started, 1)
        return self.report

    async def _run(self) -> None:
        with contextlib.ExitStack() as stack:
            bare_url = None
            if Stage.BARE in self.plan.stages:
                bare_url = stack.enter_context(bare_sanic(self.plan.work_dir / "logs/bare.log"))
            topology = None
            if self.plan.needs_cluster:
                self.progress("starting the local topology (3 members, 3 logging, facade)...")
                topology = stack.enter_context(
                    local_topology(self.plan.work_dir / "topology", self.plan.jar)
                )
            durable = None
            if self.plan.needs_database:
                self.progress(
                    "starting a throwaway PostgreSQL and a topology that keeps the map in it..."
                )
                server = stack.enter_context(throwaway_postgres())
                durable = stack.enter_context(
                    local_topology(
                        self.plan.work_dir / "durable-topology",
                        self.plan.jar,
                        database=server.database,
                        cluster_name=DURABLE_CLUSTER_NAME,
                    )
                )
            storages: list[Storage] = []
            try:
                storage = durable_storage = None
                if topology is not None:
                    storage = await Storage.connect(
                        topology.cluster_name, topology.members, topology.map_name
                    )
                    storages.append(storage)
                if durable is not None:
                    durable_storage = await Storage.connect(
                        durable.cluster_name, durable.members, durable.map_name
                    )
                    storages.append(durable_storage)
                await self._posts(bare_url, topology, storage, durable)
                if topology is not None and storage is not None:
                    if Stage.GET in self.plan.stages:
                        await self._gets(topology, storage)
                    if Stage.SIZES in self.plan.stages:
                        await self._sizes(topology, storage)
                    if Stage.PAGES in self.plan.stages:
                        await self._pages(topology, storage)
                if (
                    durable is not None
                    and durable_storage is not None
                    and Stage.RESTART in self.plan.stages
                ):
                    await self._restart(durable, durable_storage)
            finally:
                for opened in storages:
                    await opened.close()

    def _figures(self, stages: Sequence[str]) -> dict[tuple[str, int], Figure]:
        figures = {}
        for stage in stages:
            for concurrency in self.plan.concurrency:
                figure = Figure(stage, concurrency)
                self.report.throughput.append(figure)
                figures[stage, concurrency] = figure
        return figures

    def _note(self, label: str, m: Measurement) -> None:
        self.progress(
            f"  {label}: {m.rps:,.0f} req/s, p50 {m.p50_ms:.2f} ms, p99 {m.p99_ms:.2f} ms, "
            f"{m.errors} errors"
        )

    async def _posts(
        self,
        bare_url: str | None,
        topology: Topology | None,
        storage: Storage | None,
        durable: Topology | None,
    ) -> None:
        loads: dict[str, Callable[[int, float], Any]] = {}
        stages = self.plan.stages
        if bare_url is not None:
            loads[BARE] = lambda c, s: self.wrk_load(bare_url, Load.POST_JSON, c, s)
        if topology is not None and Stage.DIRECT in stages:
            direct = topology.logging_url
            loads[DIRECT] = lambda c, s: self.wrk_load(direct, Load.POST_JSON, c, s)
        if storage is not None and Stage.CLIENT in stages:
            loads[CLIENT] = storage.put_load
        if topology is not None and Stage.POST in stages:
            facade = topology.facade_url
            loads[FACADE_POST] = lambda c, s: self.wrk_load(facade, Load.POST_TEXT, c, s)
        if durable is not None and Stage.DURABLE in stages:
            kept = durable.facade_url
            loads[FACADE_POST_DURABLE] = lambda c, s: self.wrk_load(kept, Load.POST_TEXT, c, s)
        if not loads:
            return
        figures = self._figures(list(loads))
        for stage, load in loads.items():
            await self._warm_up(stage, load)
        # Rounds: every stage and concurrency once per round, so a burst of noise from other
        # processes on the machine lands on all of them rather than on one stage's runs.
        for round_ in range(1, self.plan.runs + 1):
            self.progress(f"round {round_}/{self.plan.runs}")
            for stage, load in loads.items():
                for concurrency in self.plan.concurrency:
                    measurement = await load(concurrency, self.plan.duration)
                    figures[stage, concurrency].runs.append(measurement)
                    self._note(f"{stage} c{concurrency}", measurement)

    async def _warm_up(self, stage: str, load: Callable[[int, float], Any]) -> None:
        """Runs at the top concurrency until the throughput stops climbing (warmup.py)."""
        slice_s = self.plan.duration
        fewest, most = warmup.slices(self.plan.warmup, self.plan.warmup_max, slice_s)
        concurrency = max(self.plan.concurrency)
        rates: list[float] = []
        while len(rates) < most and (len(rates) < fewest or not warmup.settled(rates)):
            measurement: Measurement = await load(concurrency, slice_s)
            rates.append(measurement.rps)
        settled = warmup.settled(rates)
        verdict = "settled" if settled else "still climbing at the limit"
        self.progress(
            f"warm-up {stage} c{concurrency}: "
            + " > ".join(f"{rate:,.0f}" for rate in rates)
            + f" req/s ({verdict}, {len(rates) * slice_s:.0f} s)"
        )
        self.report.meta.setdefault("warmup", {})[stage] = {
            "slices_req_s": [round(rate, 1) for rate in rates],
            "settled": settled,
        }

    async def _gets(self, topology: Topology, storage: Storage) -> None:
        size = self.plan.get_size
        await storage.clear()
        await storage.fill(size)
        check_counts(topology, size)
        figures = self._figures([FACADE_GET])
        self.progress(f"warm-up {FACADE_GET} with {size:,} messages")
        await self.wrk_load(topology.facade_url, Load.GET, 16, self.plan.warmup)
        for round_ in range(1, self.plan.runs + 1):
            self.progress(f"round {round_}/{self.plan.runs} ({size:,} messages)")
            for concurrency in self.plan.concurrency:
                m = await self.wrk_load(
                    topology.facade_url, Load.GET, concurrency, self.plan.duration
                )
                figures[FACADE_GET, concurrency].runs.append(m)
                self._note(f"{FACADE_GET} c{concurrency}", m)

    async def _sizes(self, topology: Topology, storage: Storage) -> None:
        await storage.clear()
        stored = 0
        urls = {GET_FACADE: topology.facade_url, GET_DIRECT: topology.logging_url}
        for size in sorted(self.plan.sizes):
            began = time.monotonic()
            await storage.fill(size - stored, first=stored)
            stored = size
            self.progress(f"{size:,} messages stored in {time.monotonic() - began:.1f} s")
            # Also the warm-up: one full GET each way, checked to hold every message.
            slowest = check_counts(topology, size)
            # Long enough for several GETs per run even when one takes seconds.
            seconds = max(self.plan.size_duration, 4 * slowest)
            figures = {}
            for stage in urls:
                figures[stage] = Figure(stage, 1, size=size)
                self.report.by_size.append(figures[stage])
            for _ in range(self.plan.runs):
                for stage, url in urls.items():
                    m = await self.wrk_load(url, Load.GET, 1, seconds)
                    figures[stage].runs.append(m)
                    self._note(f"{stage} at {size:,}", m)

    async def _pages(self, topology: Topology, storage: Storage) -> None:
        """GET /?limit=100 through the facade at each log size: the first page, and the page
        after the message at 90% of the log (its cursor: that accept time, the nil UUID, so
        the page starts with that message)."""
        await storage.clear()
        stored = 0
        bases: list[tuple[int, int]] = []  # (first message number, its fill's base)
        for size in sorted(self.plan.sizes):
            began = time.monotonic()
            bases.append((stored, await storage.fill(size - stored, first=stored)))
            stored = size
            self.progress(f"{size:,} messages stored in {time.monotonic() - began:.1f} s")
            # At 90% of the log, but never so deep that the page is not a full one (a small
            # log in a smoke run).
            deep = max(0, min(size * 9 // 10, size - PAGE_LIMIT))
            base = next(b for first, b in reversed(bases) if first <= deep)
            cursor = f"{base + deep - 1}.{uuid.UUID(int=0)}"
            urls = {
                PAGE_FIRST: f"{topology.facade_url}?limit={PAGE_LIMIT}",
                PAGE_DEEP: f"{topology.facade_url}?limit={PAGE_LIMIT}&after={cursor}",
            }
            for url in urls.values():
                check_page(url, min(PAGE_LIMIT, size))
            figures = {}
            for stage in urls:
                figures[stage] = Figure(stage, 1, size=size)
                self.report.by_size.append(figures[stage])
            for _ in range(self.plan.runs):
                for stage, url in urls.items():
                    m = await self.wrk_load(url, Load.GET, 1, self.plan.size_duration)
                    figures[stage].runs.append(m)
                    self._note(f"{stage} at {size:,}", m)

    async def _restart(self, topology: Topology, storage: Storage) -> None:
        """Fill the PostgreSQL-backed log, stop every member, start them again and time until
        the facade's GET returns the whole log (loaded back from PostgreSQL); then its GET."""
        size = self.plan.restart_size
        await storage.clear()
        began = time.monotonic()
        await storage.fill(size)
        self.progress(f"{size:,} messages stored (PostgreSQL) in {time.monotonic() - began:.1f} s")
        check_counts(topology, size)
        # Its work is done; connected, it would only report its members' departure as errors.
        await storage.close()
        began = time.monotonic()
        killed = topology.stop_members()
        stopped = time.monotonic()
        if killed:
            raise RuntimeError(f"members needed SIGKILL to stop: {', '.join(killed)}")
        topology.start_members()
        ready = time.monotonic()
        wait_whole_log(topology.facade_url, size, RECOVERY_TIMEOUT)
        back = time.monotonic()
        recovery = Recovery(size, stopped - began, ready - stopped, back - stopped)
        self.report.recoveries.append(recovery)
        self.progress(
            f"full restart with {size:,} messages: members stopped in {recovery.stop_s:.1f} s, "
            f"up again in {recovery.members_ready_s:.1f} s, whole log back after "
            f"{recovery.log_back_s:.1f} s"
        )
        slowest = check_counts(topology, size)
        seconds = max(self.plan.size_duration, 4 * slowest)
        figure = Figure(GET_RESTARTED, 1, size=size)
        self.report.by_size.append(figure)
        for _ in range(self.plan.runs):
            m = await self.wrk_load(topology.facade_url, Load.GET, 1, seconds)
            figure.runs.append(m)
            self._note(f"{GET_RESTARTED} at {size:,}", m)


PAGE_LIMIT = 100


def whole_log_count(url: str) -> int | None:
    """Messages in the facade's JSON GET; None while it does not answer 200."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return len(json.loads(response.read())["messages"])
    except (OSError, ValueError, KeyError):
        # Refused, 503 (HTTPError is an OSError) or cut off while the members come back.
        return None


def wait_whole_log(url: str, size: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        count = whole_log_count(url)
        if count == size:
            return
        if count is not None and count > size:
            raise RuntimeError(f"expected {size} messages after the restart, got {count}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the log was not back whole {timeout:.0f} s after the restart")
        time.sleep(RECOVERY_POLL)


def check_page(url: str, limit: int) -> None:
    """The page holds `limit` messages (also the warm-up of its first query)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        count = len(json.loads(response.read())["messages"])
    if count != limit:
        raise RuntimeError(f"expected {limit} messages from {url}, got {count}")


def check_counts(topology: Topology, size: int) -> float:
    """Both GETs return exactly `size` messages: the figures are about what they claim.
    Returns the seconds the slower of the two took."""
    began = time.monotonic()
    with urllib.request.urlopen(topology.logging_url, timeout=60) as response:
        direct = len(json.loads(response.read())["messages"])
    middle = time.monotonic()
    request = urllib.request.Request(topology.facade_url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        via_facade = len(json.loads(response.read())["messages"])
    slowest = max(middle - began, time.monotonic() - middle)
    if direct != size or via_facade != size:
        raise RuntimeError(
            f"expected {size} messages, the logging instance returned {direct}, "
            f"the facade {via_facade}"
        )
    return slowest
