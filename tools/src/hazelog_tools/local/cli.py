"""`hazelog local up|down|status`: the default topology as local processes on 127.0.0.1."""

from __future__ import annotations

import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import click

from hazelog_tools.local.processes import (
    Running,
    StartError,
    load_state,
    ports_in_use,
    save_state,
    stop,
    tail,
)
from hazelog_tools.local.runner import hazelog_command, start_all
from hazelog_tools.local.topology import Ports, build_topology

HOST = "127.0.0.1"
STATE_FILE = "state.json"

base_dir_option = click.option(
    "--base-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".cache/local"),
    show_default=True,
    help="Where the state file, member configs and logs go.",
)


@click.group(name="local")
def local() -> None:
    """The default topology as local processes on 127.0.0.1."""


@local.command()
@base_dir_option
@click.option("--java", default="java", show_default=True, help="Java 17+ executable.")
@click.option(
    "--jar",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path(".cache/artifacts/hazelcast-5.7.0.jar"),
    show_default=True,
    help="Hazelcast jar (make artifacts fetches it).",
)
@click.option(
    "--jmx-exporter",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Prometheus JMX exporter agent jar (make artifacts fetches "
        ".cache/artifacts/jmx_prometheus_javaagent-1.0.1.jar): each member then serves "
        "/metrics on its logging port + 2000."
    ),
)
@click.option(
    "--port-offset",
    type=int,
    default=0,
    show_default=True,
    help="Add this to every default port (to run beside another topology).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=90.0,
    show_default=True,
    help="Seconds the members, then the services, may take to become ready.",
)
def up(
    base_dir: Path,
    java: str,
    jar: Path,
    jmx_exporter: Path | None,
    port_offset: int,
    timeout: float,
) -> None:
    """Start 3 members, 3 logging instances, messages and facade; wait until all are ready."""
    state_path = base_dir / STATE_FILE
    if any(process.alive() for process in load_state(state_path)):
        raise click.ClickException(
            f"already running (see `hazelog local status --base-dir {base_dir}`); "
            "stop it with `hazelog local down` first"
        )
    java_path = shutil.which(java)
    if java_path is None:
        raise click.ClickException(f"java not found: {java!r} (install openjdk-17-jre-headless)")
    if not jar.is_file():
        raise click.ClickException(f"Hazelcast jar not found: {jar} (run `make artifacts`)")
    if jmx_exporter is not None and not jmx_exporter.is_file():
        raise click.ClickException(
            f"JMX exporter jar not found: {jmx_exporter} (run `make artifacts`)"
        )
    try:
        ports = Ports().shifted(port_offset)
    except ValueError as exc:
        raise click.ClickException(f"--port-offset {port_offset}: {exc}") from exc
    busy = ports_in_use(HOST, ports.all())
    if busy:
        raise click.ClickException(
            f"port(s) {', '.join(map(str, busy))} on {HOST} already in use; "
            "nothing was started (another topology? `hazelog local down`, or --port-offset)"
        )

    specs = build_topology(
        ports,
        base_dir=base_dir.resolve(),
        jar=jar.resolve(),
        hazelog=hazelog_command(),
        java=java_path,
        host=HOST,
        jmx_exporter_jar=jmx_exporter.resolve() if jmx_exporter is not None else None,
    )
    started: list[Running] = []

    def record(running: Running) -> None:
        # Saved after every start, so `local down` finds them even if this process dies.
        started.append(running)
        save_state(state_path, started)

    previous_sigterm = signal.signal(signal.SIGTERM, _interrupt)
    # Python keeps SIGINT ignored when it starts with it ignored (a background job of a
    # non-interactive shell): Ctrl-C and `kill -INT` must still stop what `up` started.
    previous_sigint = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start_all(specs, timeout, on_started=record)
    except StartError as exc:
        state_path.unlink(missing_ok=True)
        log_path = next(spec.log_path for spec in specs if spec.name == exc.name)
        click.echo(f"hazelog local: {exc}; stopped everything. Last lines of {log_path}:", err=True)
        click.echo(tail(log_path), err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        state_path.unlink(missing_ok=True)
        click.echo("hazelog local: interrupted; stopped everything it had started", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        signal.signal(signal.SIGINT, previous_sigint)
    click.echo(_table(started))
    click.echo(f"\nStop with: hazelog local down --base-dir {base_dir}")


@local.command()
@base_dir_option
def down(base_dir: Path) -> None:
    """Stop everything `local up` started (SIGTERM, then SIGKILL after a bound)."""
    state_path = base_dir / STATE_FILE
    processes = load_state(state_path)
    if not processes:
        click.echo("hazelog local: nothing is running")
        return
    alive = [process for process in processes if process.alive()]
    killed = stop(alive)
    state_path.unlink(missing_ok=True)
    click.echo(f"hazelog local: stopped {len(alive)} process(es)")
    if killed:
        click.echo(f"hazelog local: needed SIGKILL: {', '.join(killed)}", err=True)


@local.command()
@base_dir_option
def status(base_dir: Path) -> None:
    """Show each recorded process; exit 0 only when all of them run."""
    processes = load_state(base_dir / STATE_FILE)
    if not processes:
        click.echo("hazelog local: not running")
        sys.exit(3)
    click.echo(_table(processes, with_state=True))
    if not all(process.alive() for process in processes):
        sys.exit(1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _table(processes: Sequence[Running], *, with_state: bool = False) -> str:
    header = ["NAME", "PID", *(["STATE"] if with_state else []), "URL", "LOG"]
    rows = [
        [
            process.name,
            str(process.pid),
            *([("running" if process.alive() else "exited")] if with_state else []),
            process.url,
            str(process.log_path),
        ]
        for process in processes
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
