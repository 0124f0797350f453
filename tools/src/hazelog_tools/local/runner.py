"""Bringing a whole topology up in order, and down again on any failure."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hazelog_tools.local.processes import Running, StartError, start, stop, wait_ready
from hazelog_tools.local.topology import Kind, ProcessSpec


def hazelog_command() -> list[str]:
    """argv prefix that runs this very hazelog (the venv's console script when there is one)."""
    script = Path(sys.executable).parent / "hazelog"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from hazelog.cli import main; main()"]


def start_all(
    specs: Sequence[ProcessSpec],
    timeout: float,
    on_started: Callable[[Running], None] = lambda _: None,
) -> list[Running]:
    """Start the members, wait until they form the cluster, then start the services and wait
    until they are ready. On failure or Ctrl-C, stop everything started and re-raise.

    `timeout` bounds each of the two waits.
    """
    started: list[Running] = []
    try:
        members = [spec for spec in specs if spec.kind is Kind.MEMBER]
        services = [spec for spec in specs if spec.kind is not Kind.MEMBER]
        for phase in (members, services):
            pairs = []
            for spec in phase:
                running = start(spec)
                started.append(running)
                on_started(running)
                pairs.append((spec, running))
            wait_ready(pairs, timeout)
    except (StartError, KeyboardInterrupt, OSError):
        # A second Ctrl-C must not leave half of them running.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stop(started)
        finally:
            signal.signal(signal.SIGINT, previous)
        raise
    return started
