"""Starting, watching and stopping the local topology's processes.

Each process runs in its own session (setsid) with stdout and stderr in one log file. A process
is known by its PID *and* its start time (from /proc), so a stale record never makes us signal
an unrelated process that reused the PID.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hazelog_tools.local.topology import Kind, Ports, ProcessSpec
from hazelog_tools.member import http_ok, member_health

# Variables that would make a child think it runs as a systemd unit (journal logging,
# sd_notify): the local runner wants plain stderr in the log file.
_SYSTEMD_VARIABLES = (
    "INVOCATION_ID",
    "JOURNAL_STREAM",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
)
_POLL_INTERVAL = 0.2


class StartError(Exception):
    """A process exited or did not become ready; `name` says which."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass
class Running:
    """A started process. `popen` is set only in the process that started it."""

    name: str
    kind: Kind
    pid: int
    start_time: int
    url: str
    log_path: Path
    stop_timeout: float
    popen: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def alive(self) -> bool:
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return process_start_time(self.pid) == self.start_time

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "pid": self.pid,
            "start_time": self.start_time,
            "url": self.url,
            "log": str(self.log_path),
            "stop_timeout": self.stop_timeout,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Running:
        return cls(
            name=str(data["name"]),
            kind=Kind(data["kind"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            url=str(data["url"]),
            log_path=Path(data["log"]),
            stop_timeout=float(data["stop_timeout"]),
        )


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields start after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:
        return None
    return int(fields[19])


# Port offsets for a topology beside the default one (offset 0) that keep its highest port
# (the JMX exporters', 22002 + offset) below the kernel's ephemeral range (32768+), where
# clients' own ports would collide with ours.
FREE_OFFSETS = range(300, 10700)


def free_port_offset(host: str) -> int:
    """An offset at which every port of the default topology is free on `host` (tests and
    the benchmark run beside a user's `hazelog local up`)."""
    rng = random.Random()
    for _ in range(100):
        offset = rng.choice(FREE_OFFSETS)
        if not ports_in_use(host, Ports().shifted(offset).all()):
            return offset
    raise RuntimeError(f"no port offset in {FREE_OFFSETS} has every topology port free")


def ports_in_use(host: str, ports: Iterable[int]) -> list[int]:
    """Ports on `host` that something already listens on (or we may not bind)."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Like the servers do, so a port held only by old TIME_WAIT connections counts as free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                if exc.errno not in {errno.EADDRINUSE, errno.EACCES}:
                    raise
                busy.append(port)
    return busy


def start(spec: ProcessSpec) -> Running:
    """Write the spec's files and start it detached, output to its log file (truncated)."""
    for path, text in spec.files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_VARIABLES}
    env.update(spec.env)
    with spec.log_path.open("wb") as log:
        popen = subprocess.Popen(
            spec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    start_time = process_start_time(popen.pid)
    return Running(
        name=spec.name,
        kind=spec.kind,
        pid=popen.pid,
        # A process that died at once has no start time; it fails the readiness wait.
        start_time=start_time if start_time is not None else -1,
        url=spec.url,
        log_path=spec.log_path,
        stop_timeout=spec.stop_timeout,
        popen=popen,
    )


def is_ready(spec: ProcessSpec) -> bool:
    if not http_ok(spec.ready_url, timeout=0.5):
        return False
    if spec.kind is Kind.MEMBER and spec.cluster_size > 1:
        # "ready" only says this member runs; wait until all have found each other.
        health = member_health(spec.host, spec.port)
        return health is not None and health.get("clusterSize") == spec.cluster_size
    return True


def wait_ready(
    pairs: Sequence[tuple[ProcessSpec, Running]],
    timeout: float,
    on_ready: Callable[[Running], None] = lambda _: None,
) -> None:
    """Return once every process is ready; StartError when one exits or time runs out."""
    deadline = time.monotonic() + timeout
    waiting = list(pairs)
    while waiting:
        for spec, running in list(waiting):
            if not running.alive():
                raise StartError(spec.name, "exited before it was ready")
            if is_ready(spec):
                waiting.remove((spec, running))
                on_ready(running)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise StartError(waiting[0][0].name, f"not ready after {timeout:.0f} s")
        time.sleep(_POLL_INTERVAL)


def signal_process(running: Running, signum: signal.Signals) -> bool:
    """Send `signum` if the process is still the one we started; True if it was sent."""
    if not running.alive():
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(running.pid, signum)
        return True
    return False


def wait_exit(processes: Sequence[Running], timeout: float) -> list[Running]:
    """Wait up to `timeout` for the processes to exit; return those still alive."""
    deadline = time.monotonic() + timeout
    left = [p for p in processes if p.alive()]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if p.alive()]
    return left


def stop(processes: Sequence[Running]) -> list[str]:
    """Stop the services, then the members (so no logging instance sees its member vanish
    mid-request): SIGTERM, wait each one's bound, then SIGKILL. Returns the names killed."""
    killed: list[str] = []
    services = [p for p in processes if p.kind is not Kind.MEMBER]
    members = [p for p in processes if p.kind is Kind.MEMBER]
    for group in (services, members):
        for process in group:
            signal_process(process, signal.SIGTERM)
        bound = max((p.stop_timeout for p in group), default=0.0)
        for process in wait_exit(group, bound):
            if signal_process(process, signal.SIGKILL):
                killed.append(process.name)
        wait_exit(group, 5.0)
        for process in group:
            if process.popen is not None:
                # Reap it, so no zombie remains in a long-lived parent (the test session).
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=1.0)
    return killed


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:])


def save_state(path: Path, processes: Sequence[Running]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({"processes": [p.to_json() for p in processes]}, indent=2) + "\n")
    scratch.replace(path)


def load_state(path: Path) -> list[Running]:
    """The recorded processes; [] when there is no state file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [Running.from_json(item) for item in data["processes"]]
