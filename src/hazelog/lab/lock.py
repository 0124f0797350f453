"""One lab command at a time on this machine: the bridge, the addresses and the cgroup names
are machine-wide, so two `lab up`/`lab down` must never interleave, even from two checkouts."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hazelog.lab.errors import LabError

LOCK_PATH = Path("/run/hazelog-lab.lock")


@contextmanager
def lab_lock(path: Path = LOCK_PATH) -> Iterator[None]:
    """Hold an exclusive flock on `path`; fail at once (with the holder) if another has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
            raise LabError(
                f"another lab command is running ({holder}); wait for it, the lock is {path}"
            ) from None
        # Who holds it, for the message above; the file itself is never removed, which keeps
        # the flock race-free.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
