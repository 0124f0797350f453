"""The processes under load: the local topology (through the local runner's own code, on free
ports so a running `hazelog local up` is left alone) and the bare Sanic baseline."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hazelog_tools.local.processes import Running, free_port_offset, start, stop, wait_ready
from hazelog_tools.local.runner import hazelog_command, start_all
from hazelog_tools.local.topology import Kind, Ports, ProcessSpec, build_topology
from hazelog_tools.member import (
    DEFAULT_CLUSTER_NAME,
    DEFAULT_MAP_NAME,
    MAPSTORE_JAR_NAME,
    MapStoreDatabase,
    http_ok,
)

HOST = "127.0.0.1"
START_TIMEOUT = 120.0
# What a member keeping the map in PostgreSQL needs next to the Hazelcast jar (make artifacts).
JDBC_DRIVER_JAR_NAME = "postgresql-42.7.4.jar"


def mapstore_jars(jar: Path) -> tuple[Path, ...]:
    return (jar.parent / MAPSTORE_JAR_NAME, jar.parent / JDBC_DRIVER_JAR_NAME)


def free_ports() -> Ports:
    """The default topology's ports, shifted to where all of them are free."""
    return Ports().shifted(free_port_offset(HOST))


@dataclass
class Topology:
    ports: Ports
    specs: tuple[ProcessSpec, ...]
    # Replaced in place when processes are restarted: what is stopped at the end.
    running: list[Running]
    cluster_name: str = DEFAULT_CLUSTER_NAME
    map_name: str = DEFAULT_MAP_NAME

    @property
    def facade_url(self) -> str:
        return f"http://{HOST}:{self.ports.facade}/"

    @property
    def logging_url(self) -> str:
        """The logging instance the "direct" stages hit (the first one)."""
        return f"http://{HOST}:{self.ports.logging[0]}/"

    @property
    def members(self) -> list[str]:
        return [f"{HOST}:{port}" for port in self.ports.members]

    def process(self, name: str) -> Running:
        for running in self.running:
            if running.name == name:
                return running
        raise KeyError(name)

    def stop_members(self) -> list[str]:
        """Stop every member (gracefully, SIGKILL past its bound); the names that needed
        SIGKILL. The services keep running and reconnect when the members are back."""
        members = [r for r in self.running if r.kind is Kind.MEMBER]
        killed = stop(members)
        self.running = [r for r in self.running if r.kind is not Kind.MEMBER]
        return killed

    def start_members(self) -> None:
        """Start every member again and wait until they have formed the cluster."""
        pairs = []
        for spec in self.specs:
            if spec.kind is Kind.MEMBER:
                # The earlier run's log is kept next to the new one.
                if spec.log_path.exists():
                    spec.log_path.rename(spec.log_path.with_suffix(".log.1"))
                running = start(spec)
                self.running.append(running)
                pairs.append((spec, running))
        wait_ready(pairs, START_TIMEOUT)


@contextlib.contextmanager
def local_topology(
    base_dir: Path,
    jar: Path,
    database: MapStoreDatabase | None = None,
    cluster_name: str = DEFAULT_CLUSTER_NAME,
) -> Iterator[Topology]:
    """3 members, 3 logging instances, messages and facade, ready; stopped on exit. With
    `database`, the members keep the map in it (hazelog's MapStore)."""
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java is not installed (`make system-deps` installs a JRE)")
    if not jar.is_file():
        raise RuntimeError(f"Hazelcast jar not found: {jar} (run `make artifacts`)")
    classpath = mapstore_jars(jar) if database is not None else ()
    for extra in classpath:
        if not extra.is_file():
            raise RuntimeError(f"{extra} not found (run `make artifacts`)")
    ports = free_ports()
    specs = build_topology(
        ports,
        base_dir=base_dir,
        jar=jar,
        hazelog=hazelog_command(),
        java=java,
        host=HOST,
        cluster_name=cluster_name,
        database=database,
        classpath=classpath,
    )
    # start_all stops what it started when it fails; after that, stopping is ours.
    topology = Topology(ports, tuple(specs), start_all(specs, START_TIMEOUT), cluster_name)
    try:
        yield topology
    finally:
        stop(topology.running)


@contextlib.contextmanager
def bare_sanic(log_path: Path) -> Iterator[str]:
    """The bare Sanic baseline in its own process; yields its URL."""
    port = free_ports().facade
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hazelog_tools.bench.bare", HOST, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not http_ok(f"http://{HOST}:{port}/ready", timeout=0.5):
            if process.poll() is not None:
                raise RuntimeError(f"bare Sanic exited with {process.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"bare Sanic not ready after 30 s; see {log_path}")
            time.sleep(0.1)
        yield f"http://{HOST}:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
