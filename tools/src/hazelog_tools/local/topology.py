"""The default hazelog topology as local processes: which ones, with which ports and arguments.

Pure: nothing here touches the file system or the network, so the local runner and the
integration tests build the same processes, the tests only on other ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from hazelog_tools.member import (
    DEFAULT_CLUSTER_NAME,
    MapStoreDatabase,
    health_url,
    member_command,
    member_port_for,
    render_member_config,
)


class Kind(StrEnum):
    MEMBER = "member"
    LOGGING = "logging"
    MESSAGES = "messages"
    FACADE = "facade"


@dataclass(frozen=True)
class Ports:
    """The topology's ports; each logging instance's member listens on its port + 1000."""

    facade: int = 8080
    messages: int = 8081
    logging: tuple[int, ...] = (20000, 20001, 20002)

    def __post_init__(self) -> None:
        if not self.logging:
            raise ValueError("the topology needs at least one logging instance")
        for port in self.all():
            if not 1 <= port <= 65535:
                raise ValueError(f"port {port} is not a TCP port")
        if len(set(self.all())) != len(self.all()):
            raise ValueError(f"ports collide: {self.all()}")

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(member_port_for(port) for port in self.logging)

    def all(self) -> tuple[int, ...]:
        return (*self.members, *self.logging, self.messages, self.facade)

    def shifted(self, offset: int) -> Ports:
        """Every port moved by `offset`, e.g. to run a second topology next to the default."""
        return Ports(
            facade=self.facade + offset,
            messages=self.messages + offset,
            logging=tuple(port + offset for port in self.logging),
        )


@dataclass(frozen=True)
class ProcessSpec:
    """One process to start: its command, the files it needs, how to tell it is ready."""

    name: str
    kind: Kind
    host: str
    port: int
    argv: tuple[str, ...]
    url: str
    ready_url: str
    log_path: Path
    # Written before the process starts: (path, text).
    files: tuple[tuple[Path, str], ...] = ()
    # How long a SIGTERM'd process may take before it gets SIGKILL.
    stop_timeout: float = 10.0
    # Members: how many members the cluster must have before this one counts as ready.
    cluster_size: int = 0
    env: dict[str, str] = field(default_factory=dict)


def build_topology(
    ports: Ports,
    *,
    base_dir: Path,
    jar: Path,
    hazelog: Sequence[str],
    java: str = "java",
    host: str = "127.0.0.1",
    cluster_name: str = DEFAULT_CLUSTER_NAME,
    graceful_max_wait: int = 20,
    database: MapStoreDatabase | None = None,
    classpath: Sequence[Path] = (),
) -> list[ProcessSpec]:
    """Members first (the logging instances need them), then the services, facade last.

    `hazelog` is the argv prefix that runs the hazelog CLI. With `database` the members keep
    the map in it; `classpath` then names the MapStore and JDBC driver jars.
    """
    logs = base_dir / "logs"
    member_addresses = [f"{host}:{port}" for port in ports.members]
    specs: list[ProcessSpec] = []
    for member_port in ports.members:
        config_path = base_dir / "config" / f"hazelcast-{member_port}.yaml"
        config = render_member_config(
            member_host=host,
            member_port=member_port,
            members=member_addresses,
            cluster_name=cluster_name,
            graceful_max_wait=graceful_max_wait,
            database=database,
        )
        specs.append(
            ProcessSpec(
                name=f"member-{member_port}",
                kind=Kind.MEMBER,
                host=host,
                port=member_port,
                argv=tuple(member_command(jar, config_path, java=java, classpath=classpath)),
                url=f"{host}:{member_port}",
                ready_url=health_url(host, member_port, "ready"),
                log_path=logs / f"member-{member_port}.log",
                files=((config_path, config),),
                # The member's own bound on its graceful shutdown, plus the JVM's exit.
                stop_timeout=graceful_max_wait + 10.0,
                cluster_size=len(ports.members),
            )
        )
    for logging_port, member_port in zip(ports.logging, ports.members, strict=True):
        own = f"{host}:{member_port}"
        # Own member first: the client connects there and fails over to the others.
        members = [own, *(address for address in member_addresses if address != own)]
        specs.append(
            _service(
                Kind.LOGGING,
                f"logging-{logging_port}",
                host,
                logging_port,
                hazelog,
                logs,
                ["--cluster-name", cluster_name, *_repeat("--member", members)],
            )
        )
    specs.append(_service(Kind.MESSAGES, "messages", host, ports.messages, hazelog, logs, []))
    logging_urls = [f"http://{host}:{port}" for port in ports.logging]
    specs.append(
        _service(
            Kind.FACADE,
            "facade",
            host,
            ports.facade,
            hazelog,
            logs,
            [
                *_repeat("--logging-url", logging_urls),
                "--messages-url",
                f"http://{host}:{ports.messages}",
            ],
        )
    )
    return specs


def _service(
    kind: Kind,
    name: str,
    host: str,
    port: int,
    hazelog: Sequence[str],
    logs: Path,
    extra: Sequence[str],
) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        kind=kind,
        host=host,
        port=port,
        argv=(*hazelog, kind.value, "--host", host, "--port", str(port), *extra),
        url=f"http://{host}:{port}/",
        ready_url=f"http://{host}:{port}/ready",
        log_path=logs / f"{name}.log",
        # Python reaches the log file unbuffered, so a crash leaves its last words there.
        env={"PYTHONUNBUFFERED": "1"},
    )


def _repeat(flag: str, values: Sequence[str]) -> list[str]:
    return [item for value in values for item in (flag, value)]
