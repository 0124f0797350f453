"""systemd readiness and watchdog notifications; silent no-ops outside systemd."""

from __future__ import annotations

import asyncio
import logging
import os

from systemd import daemon

log = logging.getLogger("hazelog.web")


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when there is no NOTIFY_SOCKET."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    return bool(daemon.notify(state))


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half the unit's WatchdogSec), None when off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    return value / 2_000_000 if value > 0 else None


async def watchdog_loop(interval: float) -> None:
    """Ping from the event loop itself, so a stuck loop stops the pings."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
