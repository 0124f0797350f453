"""Overload measurement (issue 12, back-pressure): the real local topology under the load it
serves (1x) and under four times as many clients (4x). A measurement, not a test: it prints
figures and asserts nothing about time.

    .venv/bin/python -m tests.integration.overload [--max-pending 128] [--clients N]
        [--seconds 15] [--honor-retry-after] [--open-loop] [--prioritize]

1x is as many clients as the facade holds messages (its max_pending, default 128): the most
it serves without turning anyone away. Clients connect, then start one after the other over
the first second; each is closed-loop with no think time: it POSTs a fresh message, waits
for the answer and sends the next at once, also after a 503 (a client that ignores
Retry-After, the worst case), or with --honor-retry-after sleeps as the header says.

A closed-loop client that retries at once offers whatever load the facade answers, not 4x:
its rejections wait behind every other client's (clients / answers per second). With
--open-loop, 4x is instead an arrival rate, four times the accepted POSTs per second of the
1x phase: each POST is sent on its own schedule (evenly spaced) on an idle connection (a
new one if none is), whatever happened to the others, and is not retried; how late this
process sent them is printed too (send lag), as is the rate it reached.
Printed per phase: accepted POSTs and their p50/p99, rejections (503 overloaded) with their
count and max latency, any other answer, how late this process's own event loop ran (a
latency measured here includes it), and how many connections overflowed a listen queue
(machine-wide); then, over everything stored: acknowledged messages
missing (lost), texts stored twice (duplicates), rejected texts stored anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import math
import os
import re
import shutil
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from hazelog.config import FacadeConfig
from hazelog_tools.local.runner import hazelog_command, start_all
from hazelog_tools.local.topology import Kind, Ports, build_topology
from tests.integration.support import HOST, JAR, Topology, free_port_offset


@dataclass
class Phase:
    name: str
    clients: int
    accepted: list[float] = field(default_factory=list)  # seconds, per 201
    rejected: list[float] = field(default_factory=list)  # seconds, per 503 overloaded
    other: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, str] = field(default_factory=dict)  # uuid -> text
    rejected_texts: set[str] = field(default_factory=set)
    loop_lag: list[float] = field(default_factory=list)  # seconds this process's loop ran late
    seconds: float = 0.0
    send_lag: list[float] = field(default_factory=list)  # open loop: seconds sent late
    # Connections the kernel dropped from a full listen queue meanwhile (machine-wide count).
    listen_overflows: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 1),
            **(
                {
                    "offered_per_s": round(len(self.send_lag) / self.seconds),
                    "send_lag_p99_ms": ms(percentile(self.send_lag, 99)),
                    "send_lag_max_ms": ms(max(self.send_lag)),
                }
                if self.send_lag
                else {}
            ),
            "accepted": len(self.accepted),
            "accepted_per_s": round(len(self.accepted) / self.seconds),
            "accepted_p50_ms": ms(percentile(self.accepted, 50)),
            "accepted_p99_ms": ms(percentile(self.accepted, 99)),
            "rejected": len(self.rejected),
            "rejected_max_ms": ms(max(self.rejected, default=0.0)),
            "rejected_p99_ms": ms(percentile(self.rejected, 99)),
            "other": dict(self.other),
            "client_loop_lag_p99_ms": ms(percentile(self.loop_lag, 99)),
            "client_loop_lag_max_ms": ms(max(self.loop_lag, default=0.0)),
            "listen_overflows": self.listen_overflows,
        }


def listen_overflows() -> int:
    """The kernel's TcpExt ListenOverflows counter: a connection whose handshake completed
    while the server's listen queue (its backlog) was full. Its client believes it is
    connected and sends its request, which waits for the kernel's SYN-ACK retries (1 s, 2 s,
    4 s, ...) until the server accepts: seconds of latency no server code can see."""
    lines = Path("/proc/net/netstat").read_text(encoding="ascii").splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters.get("ListenOverflows", 0))
    return 0


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


LAG_PROBE = 0.005  # seconds between probes of this process's event loop
RAMP = 1.0
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_RETRY_AFTER = re.compile(rb"\r\nretry-after: *(\d+)", re.IGNORECASE)


async def probe_loop(phase: Phase, ends_at: float) -> None:
    while time.monotonic() < ends_at:
        started = time.perf_counter()
        await asyncio.sleep(LAG_PROBE)
        phase.loop_lag.append(time.perf_counter() - started - LAG_PROBE)


@dataclass
class Answer:
    status: int
    head: bytes
    body: bytes
    arrived: float  # perf_counter when its last byte was read, before any coroutine ran


class Connection(asyncio.Protocol):
    """A minimal keep-alive HTTP/1.1 client (one request at a time): aiohttp costs this
    process so much CPU per request that its own lateness would be most of what it measures.
    The answer's time is taken in data_received, before the waiting coroutine resumes."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[Answer] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end])
        match = _CONTENT_LENGTH.search(head)
        length = int(match[1]) if match else 0
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        self.waiter.set_result(Answer(int(head[9:12]), head, body, time.perf_counter()))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed"))

    async def post(self, target: bytes, text: bytes) -> Answer:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(
            b"POST " + target + b" HTTP/1.1\r\nHost: hazelog\r\nContent-Type: text/plain\r\n"
            b"Content-Length: " + str(len(text)).encode() + b"\r\n\r\n" + text
        )
        return await self.waiter


async def connect(host: str, port: int) -> Connection:
    _, protocol = await asyncio.get_running_loop().create_connection(Connection, host, port)
    return protocol


async def post(
    phase: Phase, connection: Connection, host: str, port: int, target: bytes, text: str
) -> tuple[Connection, Answer | None]:
    """POST `text`; on a connection error or no answer within 30 s, count it in the phase and
    answer None with a new connection in place of the broken one."""
    try:
        return connection, await asyncio.wait_for(connection.post(target, text.encode()), 30)
    except (OSError, TimeoutError) as exc:
        phase.other[type(exc).__name__] += 1
        assert connection.transport is not None
        connection.transport.close()
        return await connect(host, port), None


def record(phase: Phase, text: str, answer: Answer, took: float) -> bool:
    """Count one answer in its phase; True if it turned the POST away for overload."""
    if answer.status == 201:
        phase.accepted.append(took)
        phase.acknowledged[json.loads(answer.body)["uuid"]] = text
    elif answer.status == 503 and json.loads(answer.body).get("error") == "overloaded":
        phase.rejected.append(took)
        phase.rejected_texts.add(text)
        return True
    else:
        phase.other[f"HTTP {answer.status}"] += 1
    return False


async def arrival(
    url: str, phase: Phase, idle: asyncio.Queue[Connection], number: int, due: float
) -> None:
    """One open-loop POST, due at `due` (perf_counter), on the next idle connection; no
    retry. Its send lag counts a wait for a connection: the facade answering more slowly
    than POSTs arrive shows there, not as POSTs quietly left out."""
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/").encode()
    connection = await idle.get()
    text = f"overload {phase.name} arrival {number}"
    started = time.perf_counter()
    phase.send_lag.append(started - due)
    connection, answer = await post(
        phase, connection, parts.hostname or "", parts.port or 80, target, text
    )
    if answer is not None:
        record(phase, text, answer, answer.arrived - started)
    idle.put_nowait(connection)


async def open_loop(url: str, phase: Phase, rate: float, ends_at: float) -> None:
    """POSTs at `rate` per second over `phase.clients` connections (no more: opening
    connections without bound would overflow the facade's listen queue)."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in await asyncio.gather(*(connect(host, port) for _ in range(phase.clients))):
        idle.put_nowait(connection)
    interval, number = 1 / rate, 0
    tasks: set[asyncio.Task[None]] = set()
    due = time.perf_counter()
    while time.monotonic() < ends_at:
        # Every POST due by now goes now: a late loop sends a burst, not fewer POSTs.
        while due <= time.perf_counter():
            number += 1
            task = asyncio.create_task(arrival(url, phase, idle, number, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += interval
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
    await asyncio.gather(*tasks)
    while not idle.empty():
        transport = idle.get_nowait().transport
        assert transport is not None
        transport.close()


async def client(
    url: str, phase: Phase, number: int, ends_at: float, honor_retry_after: bool
) -> None:
    parts = urllib.parse.urlsplit(url)
    host, port, target = parts.hostname or "", parts.port or 80, (parts.path or "/").encode()
    connection = await connect(host, port)
    # Clients arrive over the first RAMP seconds rather than all in one instant.
    await asyncio.sleep(RAMP * number / phase.clients)
    sequence = 0
    while time.monotonic() < ends_at:
        sequence += 1
        text = f"overload {phase.name} client {number} message {sequence}"
        started = time.perf_counter()
        connection, answer = await post(phase, connection, host, port, target, text)
        if answer is None:
            continue
        rejected = record(phase, text, answer, answer.arrived - started)
        if rejected and honor_retry_after:
            match = _RETRY_AFTER.search(answer.head)
            await asyncio.sleep(int(match[1]) if match else 1)
    assert connection.transport is not None
    connection.transport.close()


async def run_phase(
    url: str,
    name: str,
    clients: int,
    seconds: float,
    honor_retry_after: bool,
    rate: float | None = None,
) -> Phase:
    """Closed loop with `clients` clients, or with `rate`, open loop at `rate` POSTs per
    second over at least `clients` connections."""
    phase = Phase(name, clients)
    # A full collection over what the phase has recorded stalls this loop for a long time.
    gc.collect()
    gc.disable()
    started = time.monotonic()
    ends_at = started + seconds
    overflows = listen_overflows()
    load = (
        [open_loop(url, phase, rate, ends_at)]
        if rate is not None
        else [client(url, phase, n, ends_at, honor_retry_after) for n in range(clients)]
    )
    await asyncio.gather(probe_loop(phase, ends_at), *load)
    phase.seconds = time.monotonic() - started
    phase.listen_overflows = listen_overflows() - overflows
    gc.enable()
    return phase


async def stored_messages(url: str) -> list[dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers={"Accept": "application/json"}) as response,
    ):
        response.raise_for_status()
        messages: list[dict[str, Any]] = (await response.json())["messages"]
        return messages


async def measure(
    topology: Topology, clients: int, seconds: float, honor_retry_after: bool, open_loop: bool
) -> dict[str, Any]:
    url = topology.facade_url
    await run_phase(url, "warmup", clients, min(seconds, 3.0), honor_retry_after)
    capacity = await run_phase(url, "1x", clients, seconds, honor_retry_after)
    rate = 4 * len(capacity.accepted) / capacity.seconds if open_loop else None
    phases = [capacity, await run_phase(url, "4x", 4 * clients, seconds, honor_retry_after, rate)]
    stored = await stored_messages(url)
    by_text = Counter(m["msg"] for m in stored)
    stored_uuids = {m["uuid"] for m in stored}
    acknowledged = {u: t for phase in phases for u, t in phase.acknowledged.items()}
    rejected_texts = {t for phase in phases for t in phase.rejected_texts}
    one_x, four_x = (phase.figures() for phase in phases)
    return {
        "honor_retry_after": honor_retry_after,
        "open_loop_4x": open_loop,
        "1x": one_x,
        "4x": four_x,
        "p99_4x_over_1x": round(four_x["accepted_p99_ms"] / one_x["accepted_p99_ms"], 2),
        "rejections_under_50ms": sum(1 for p in phases for r in p.rejected if r < 0.050),
        "rejections": sum(len(p.rejected) for p in phases),
        "acknowledged_lost": len(set(acknowledged) - stored_uuids),
        "duplicates": sum(n - 1 for n in by_text.values() if n > 1),
        "rejected_but_stored": len(rejected_texts & set(by_text)),
        "stored": len(stored),
    }


def start_topology(base_dir: Path, max_pending: int) -> Topology:
    """The local topology on free ports, its facade holding at most `max_pending`."""
    ports = Ports().shifted(free_port_offset())
    java = shutil.which("java")
    assert java is not None, "java is not installed"
    specs = [
        dataclasses.replace(spec, argv=(*spec.argv, "--max-pending", str(max_pending)))
        if spec.kind is Kind.FACADE
        else spec
        for spec in build_topology(
            ports, base_dir=base_dir, jar=JAR, hazelog=hazelog_command(), java=java, host=HOST
        )
    ]
    topology = Topology(ports=ports, specs={spec.name: spec for spec in specs})
    try:
        start_all(
            specs, 90.0, on_started=lambda running: topology.running.update({running.name: running})
        )
    except BaseException:
        topology.stop_all()
        raise
    return topology


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-pending",
        type=int,
        default=FacadeConfig(port=1).max_pending,
        help="the facade's bound (default: its default)",
    )
    parser.add_argument(
        "--clients", type=int, default=None, help="clients at 1x (default: --max-pending)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument(
        "--honor-retry-after", action="store_true", help="a rejected client waits as told"
    )
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="4x is an arrival rate: four times the 1x phase's accepted POSTs per second",
    )
    parser.add_argument(
        "--prioritize",
        action="store_true",
        help="nice -10 for the facade and this client (root): as if they had their own cores, "
        "as the facade has its own host when deployed",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hazelog-overload-") as base:
        topology = start_topology(Path(base) / "topology", args.max_pending)
        try:
            if args.prioritize:
                for pid in (topology.running["facade"].pid, os.getpid()):
                    os.setpriority(os.PRIO_PROCESS, pid, -10)
            clients = args.clients or args.max_pending
            figures = asyncio.run(
                measure(topology, clients, args.seconds, args.honor_retry_after, args.open_loop)
            )
            figures = {"max_pending": args.max_pending, "prioritize": args.prioritize, **figures}
        finally:
            topology.stop_all()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
