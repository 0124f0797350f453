"""`hazelog lab up|down|destroy|status|ssh`: the local lab of systemd-nspawn hosts."""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

import click

from hazelog.lab import machine
from hazelog.lab.errors import LabError
from hazelog.lab.image import DEFAULT_CACHE_DIR
from hazelog.lab.inventory import default_state_dir, find_inventory, load_inventory
from hazelog.lab.lab import HostStatus, Lab
from hazelog.lab.lock import lab_lock
from hazelog.lab.preflight import require_root, require_tools
from hazelog.lab.ssh import key_path, ssh_argv

F = TypeVar("F", bound=Callable[..., object])

UP_TOOLS = ("systemd-nspawn", "ip", "nsenter", "mount", "umount", "ssh", "ssh-keygen", "systemctl")
DOWN_TOOLS = ("ip", "umount")


def _echo(message: str) -> None:
    click.echo(f"lab: {message}", err=True)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A LabError ends the command with its message (and details, e.g. a console tail)."""
    try:
        yield
    except LabError as exc:
        click.echo(f"hazelog lab: error: {exc.message}", err=True)
        for line in exc.details:
            click.echo(f"  | {line}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("hazelog lab: interrupted", err=True)
        sys.exit(130)


def _exit_on_sigterm() -> None:
    """SIGTERM (a CI timeout, a supervisor) unwinds like Ctrl-C, so a half-done `up` rolls
    back and an interrupted image build leaves no temporary tree or mount behind."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _location_options(func: F) -> F:
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Clones, SSH key, logs [default: .lab next to the inventory's repository].",
    )(func)
    func = click.option(
        "--inventory",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Ansible inventory of the lab [default: inventory/lab/hosts.yml here or above].",
    )(func)
    return func


def _cache_option(func: F) -> F:
    return click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_CACHE_DIR,
        show_default=True,
        envvar="HAZELOG_LAB_CACHE_DIR",
        help="Where the base image is built once and kept.",
    )(func)


def _open_lab(
    inventory: Path | None, state_dir: Path | None, cache_dir: Path = DEFAULT_CACHE_DIR
) -> Lab:
    path = inventory if inventory is not None else find_inventory(Path.cwd())
    inv = load_inventory(path)
    state = state_dir if state_dir is not None else default_state_dir(path)
    return Lab(inv, state, cache_dir, echo=_echo)


def format_table(rows: Sequence[HostStatus]) -> str:
    def memory(value: int | None) -> str:
        return "-" if value is None else f"{value / 2**20:.0f} MiB"

    table = [("HOST", "ADDRESS", "STATE", "PID", "MEMORY")] + [
        (r.name, r.address, r.state, str(r.pid or "-"), memory(r.memory_bytes)) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


@click.group(name="lab")
def lab() -> None:
    """Local lab hosts: systemd-nspawn machines on a private bridge (needs root)."""


@lab.command()
@_location_options
@_cache_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds for all hosts to boot and answer SSH.",
)
def up(inventory: Path | None, state_dir: Path | None, cache_dir: Path, timeout: float) -> None:
    """Start the missing hosts (running ones are left alone) and wait until all answer SSH."""
    with _one_line_errors():
        _exit_on_sigterm()
        require_root()
        require_tools(UP_TOOLS)
        the_lab = _open_lab(inventory, state_dir, cache_dir)
        with lab_lock():
            rows = the_lab.up(timeout)
        click.echo(format_table(rows))


@lab.command()
@_location_options
def down(inventory: Path | None, state_dir: Path | None) -> None:
    """Power every host off; remove the bridge, the machines' cgroups and mounts."""
    with _one_line_errors():
        _exit_on_sigterm()
        require_root()
        require_tools(DOWN_TOOLS)
        the_lab = _open_lab(inventory, state_dir)
        with lab_lock():
            the_lab.down()
        _echo("the lab is down")


@lab.command()
@_location_options
@_cache_option
@click.option("--image", "with_image", is_flag=True, help="Also remove the cached base image.")
def destroy(
    inventory: Path | None, state_dir: Path | None, cache_dir: Path, with_image: bool
) -> None:
    """`down`, then remove the hosts' clones (their state); the next `up` makes new ones."""
    with _one_line_errors():
        _exit_on_sigterm()
        require_root()
        require_tools(DOWN_TOOLS)
        the_lab = _open_lab(inventory, state_dir, cache_dir)
        with lab_lock():
            the_lab.destroy(with_image)


@lab.command()
@_location_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(inventory: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """What runs: each host's state, its systemd-nspawn PID and memory.

    Exits 0 when every host runs (running or degraded), 3 otherwise."""
    with _one_line_errors():
        require_root()
        the_lab = _open_lab(inventory, state_dir)
        rows = the_lab.status()
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        else:
            click.echo(format_table(rows))
        inventory_hosts = {h.name for h in the_lab.inventory.hosts}
        all_up = all(r.state in machine.BOOTED_STATES for r in rows if r.name in inventory_hosts)
    sys.exit(0 if all_up else 3)


@lab.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_location_options
@click.argument("host")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(
    inventory: Path | None, state_dir: Path | None, host: str, command: tuple[str, ...]
) -> None:
    """Log into HOST as root, or run COMMAND there (its exit code is ours)."""
    with _one_line_errors():
        require_root()
        require_tools(["ssh"])
        the_lab = _open_lab(inventory, state_dir)
        target = the_lab.inventory.host(host)
        if machine.nspawn_pid(the_lab.machine_dir(host)) is None:
            raise LabError(f"{host} is not running; start the lab with `hazelog lab up`")
        argv = ssh_argv(key_path(the_lab.state_dir), target.address, command)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
