"""Real topologies for the integration tests: the local runner's own code, on free ports."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from hazelog_tools.local import processes
from hazelog_tools.local.processes import (
    Running,
    signal_process,
    start,
    stop,
    wait_exit,
    wait_ready,
)
from hazelog_tools.local.runner import hazelog_command, start_all
from hazelog_tools.local.topology import Kind, Ports, ProcessSpec, build_topology
from hazelog_tools.member import MAPSTORE_JAR_NAME, MapStoreDatabase

REPO = Path(__file__).resolve().parents[2]
JAR = Path(os.environ.get("HAZELOG_JAR", REPO / ".cache/artifacts/hazelcast-5.7.0.jar"))
# What a member keeping the map in PostgreSQL needs besides Hazelcast (make artifacts).
MAPSTORE_JARS = (
    JAR.parent / MAPSTORE_JAR_NAME,
    JAR.parent / "postgresql-42.7.4.jar",
)
HOST = "127.0.0.1"
START_TIMEOUT = 90.0
_RECEIVED = re.compile(r"received (?P<uuid>[0-9a-f-]{36}): (?P<msg>.*)$")
# A member's view of the cluster: "Members {size:3, ver:3} [" then one "Member [host]:port"
# line per member, the master first.
_MEMBER_LIST = re.compile(r"Members \{size:\d+, ver:\d+\} \[\n\s*Member \[[^\]]+\]:(?P<port>\d+)")

_live: list[Topology] = []


def free_port_offset() -> int:
    """An offset at which every port of the default topology is free on 127.0.0.1."""
    return processes.free_port_offset(HOST)


@dataclass
class Topology:
    ports: Ports
    specs: dict[str, ProcessSpec]
    running: dict[str, Running] = field(default_factory=dict)

    @property
    def facade_url(self) -> str:
        return f"http://{HOST}:{self.ports.facade}/"

    @property
    def member_names(self) -> list[str]:
        return [f"member-{port}" for port in self.ports.members]

    @property
    def logging_names(self) -> list[str]:
        return [f"logging-{port}" for port in self.ports.logging]

    def log(self, name: str) -> str:
        return self.specs[name].log_path.read_text(encoding="utf-8", errors="replace")

    def received(self, name: str) -> dict[str, str]:
        """uuid -> message, from a logging instance's log lines `received <uuid>: <msg>`."""
        found = {}
        for line in self.log(name).splitlines():
            match = _RECEIVED.search(line)
            if match:
                found[match["uuid"]] = match["msg"]
        return found

    def master_port(self) -> int:
        """The master member's port, from the latest member list a running member logged."""
        for name in self.member_names:
            if self.alive(name):
                lists = _MEMBER_LIST.findall(self.log(name))
                if lists:
                    return int(lists[-1])
        raise AssertionError("no running member has logged a member list")

    def stop(self, name: str) -> bool:
        """SIGTERM one process and wait for it within its stop bound; False if it needed
        SIGKILL (a graceful stop did not finish)."""
        return name not in stop([self.running[name]])

    def kill(self, *names: str) -> None:
        """SIGKILL the processes back to back (the same moment, as far as the cluster sees)."""
        targets = [self.running[name] for name in names]
        for process in targets:
            signal_process(process, signal.SIGKILL)
        left = wait_exit(targets, 10.0)
        assert not left, f"still alive after SIGKILL: {[p.name for p in left]}"
        for process in targets:
            if process.popen is not None:
                process.popen.wait(timeout=5)

    def restart(self, *names: str) -> None:
        """Start stopped processes again from their specs and wait until they are ready; each
        earlier log is kept next to the new one (log.1, log.2, ...)."""
        pairs = []
        for name in names:
            assert not self.alive(name), f"{name} is still running"
            spec = self.specs[name]
            generation = 1
            while spec.log_path.with_suffix(f".log.{generation}").exists():
                generation += 1
            spec.log_path.rename(spec.log_path.with_suffix(f".log.{generation}"))
            running = start(spec)
            self.running[name] = running
            pairs.append((spec, running))
        wait_ready(pairs, START_TIMEOUT)

    def alive(self, name: str) -> bool:
        return self.running[name].alive()

    def stop_all(self) -> None:
        stop(list(self.running.values()))
        if self in _live:
            _live.remove(self)


def start_topology(
    base_dir: Path, jar: Path = JAR, database: MapStoreDatabase | None = None
) -> Topology:
    """The default topology on free ports; with `database`, its members keep the map there."""
    ports = Ports().shifted(free_port_offset())
    java = shutil.which("java")
    assert java is not None
    specs = build_topology(
        ports,
        base_dir=base_dir,
        jar=jar,
        hazelog=hazelog_command(),
        java=java,
        host=HOST,
        database=database,
        classpath=MAPSTORE_JARS if database is not None else (),
    )
    topology = Topology(ports=ports, specs={spec.name: spec for spec in specs})
    _live.append(topology)

    def record(running: Running) -> None:
        topology.running[running.name] = running

    try:
        start_all(specs, START_TIMEOUT, on_started=record)
    except BaseException:
        _live.remove(topology)
        raise
    return topology


@atexit.register
def _stop_leftovers() -> None:
    # A test session interrupted between start and teardown still leaves nothing running.
    for topology in list(_live):
        topology.stop_all()


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post_message(topology: Topology, text: str) -> tuple[int, bytes]:
    return http("POST", topology.facade_url, text.encode(), headers={"Content-Type": "text/plain"})


def get_lines(topology: Topology) -> tuple[int, list[str]]:
    status, body = http("GET", topology.facade_url)
    return status, body.decode().splitlines()


def members_of(topology: Topology) -> list[str]:
    return [f"{HOST}:{port}" for port in topology.ports.members]


__all__ = ["JAR", "Kind", "Topology", "get_lines", "http", "post_message", "start_topology"]
