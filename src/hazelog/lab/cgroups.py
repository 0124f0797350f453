"""One cgroup per machine, made before its systemd-nspawn starts.

Without a host systemd nobody gives nspawn a cgroup of its own, and two machines started
from the same cgroup collide in a shared payload/init.scope. On a hybrid host (cgroup v1 plus
the unified v2 tree) the machine needs its own directory in both the name=systemd and the
unified hierarchy; it also joins the v1 memory controller, which gives `status` a per-machine
memory figure. On a pure cgroup v2 host one directory in /sys/fs/cgroup does all of that.
"""

from __future__ import annotations

import os
from pathlib import Path

from hazelog.lab.errors import LabError

CGROUP_ROOT = Path("/sys/fs/cgroup")
PREFIX = "hazelog-lab-"
_HYBRID = ("systemd", "unified", "memory")


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    if (root / "cgroup.controllers").is_file():
        return [root]
    found = [root / h for h in _HYBRID if (root / h / "cgroup.procs").is_file()]
    if not found:
        raise LabError(f"no usable cgroup hierarchy under {root}")
    return found


def machine_cgroups(name: str, root: Path = CGROUP_ROOT) -> list[Path]:
    return [h / f"{PREFIX}{name}" for h in hierarchies(root)]


def create(name: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """The cgroup.procs files a new machine's launcher writes itself into."""
    procs = []
    for directory in machine_cgroups(name, root):
        directory.mkdir(exist_ok=True)
        procs.append(directory / "cgroup.procs")
    return procs


def join(procs_files: list[Path]) -> None:
    """Move the calling process into the given cgroups (runs in the child before exec)."""
    pid = str(os.getpid()).encode()
    for procs in procs_files:
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)


def processes(name: str, root: Path = CGROUP_ROOT) -> set[int]:
    """Every process in the machine's cgroup tree (the first hierarchy tracks them all)."""
    top = machine_cgroups(name, root)[0]
    pids: set[int] = set()
    if not top.is_dir():
        return pids
    for directory, _subdirs, _files in os.walk(top):
        try:
            text = (Path(directory) / "cgroup.procs").read_text()
        except OSError:
            continue  # removed while walking
        pids.update(int(line) for line in text.split())
    return pids


def memory_bytes(name: str, root: Path = CGROUP_ROOT) -> int | None:
    for directory in machine_cgroups(name, root):
        for counter in ("memory.current", "memory.usage_in_bytes"):
            try:
                return int((directory / counter).read_text())
            except (OSError, ValueError):
                continue
    return None


def remove(name: str, root: Path = CGROUP_ROOT) -> None:
    """Remove the machine's cgroup directories, children first (the machine's own systemd
    made sub-cgroups); only possible once no process is left in them."""
    for top in machine_cgroups(name, root):
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise LabError(f"cannot remove cgroup {directory}: {exc.strerror}") from exc


def lab_cgroups(root: Path = CGROUP_ROOT) -> list[Path]:
    """Every lab machine cgroup on this controller, from any checkout."""
    return sorted(d for h in hierarchies(root) for d in h.glob(f"{PREFIX}*") if d.is_dir())


def running_lab_machines(root: Path = CGROUP_ROOT) -> set[str]:
    """Names of lab machines (from any checkout) that still have processes."""
    names = {d.name.removeprefix(PREFIX) for d in lab_cgroups(root)}
    return {name for name in names if processes(name, root)}
