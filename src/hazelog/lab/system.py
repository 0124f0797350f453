"""Running tools and handling mounts, with failures turned into one-line LabErrors."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from hazelog.lab.errors import LabError

MOUNTINFO = Path("/proc/self/mountinfo")
# Colour and cursor sequences of systemd's console status lines.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(
    argv: Sequence[str], *, what: str, timeout: float | None = 120, input_text: str | None = None
) -> str:
    """Run argv and return its stdout; on failure raise LabError naming `what` and the cause."""
    try:
        result = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LabError(f"{what}: {argv[0]} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{what}: {argv[0]} did not finish within {timeout} s") from exc
    if result.returncode != 0:
        raise LabError(f"{what}: {last_line(result.stderr or result.stdout)}")
    return result.stdout


def run_in_own_group(argv: Sequence[str], log: Path, grace: float = 15) -> int:
    """Run argv (output to `log`) in a process group of its own and return its exit code.
    If we are interrupted, the whole group gets SIGTERM (debootstrap's trap then unmounts
    what it mounted), then SIGKILL; only then does the exception go on, so the caller can
    safely delete what the group was writing to."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        return process.wait()
    except BaseException:
        stop_process_group(process.pid, grace)
        process.wait()
        raise


def stop_process_group(pgid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "failed without a message"


def tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a (console) log, or a note that there is none."""
    try:
        data = path.read_bytes()
    except OSError:
        return [f"(no log at {path})"]
    text = _ANSI.sub("", data[-16384:].decode(errors="replace"))
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:] if kept else [f"({path} is empty)"]


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points(mountinfo: str | None = None) -> list[Path]:
    text = MOUNTINFO.read_text() if mountinfo is None else mountinfo
    return [Path(_unescape_mountinfo(line.split()[4])) for line in text.splitlines() if line]


def mounts_under(path: Path, mountinfo: str | None = None) -> list[Path]:
    """Mount points at or below `path`, deepest first (the order to unmount them)."""
    base = path.resolve() if path.exists() else path
    found = {p for p in mount_points(mountinfo) if p == base or base in p.parents}
    return sorted(found, key=lambda p: (-len(p.parts), str(p)))


def is_mountpoint(path: Path) -> bool:
    return path.resolve() in mount_points() if path.exists() else False


def unmount_all(path: Path) -> None:
    for point in mounts_under(path):
        # A mount point may be stacked several times; unmount until it is gone.
        while point in mount_points():
            run(["umount", str(point)], what=f"unmount {point}")


def remove_tree(path: Path) -> None:
    """Delete a directory tree, first unmounting anything below it so nothing else is deleted."""
    if not path.exists() and not path.is_symlink():
        return
    unmount_all(path)
    if mounts_under(path):
        raise LabError(f"cannot remove {path}: something is still mounted below it")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def write_inside(
    root: Path, relpath: str, content: str, mode: int = 0o644, dir_mode: int = 0o755
) -> None:
    """Write root/relpath atomically, refusing symlinks on the way: a path inside a machine
    could point anywhere on the controller, and we write as root."""
    parts = Path(relpath).parts
    current = root
    for part in parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise LabError(f"refusing to write through the symlink {current}")
        if not current.exists():
            current.mkdir(mode=dir_mode)
    target = current / parts[-1]
    tmp = current / f".{parts[-1]}.hazelog-tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.write(fd, content.encode())
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    # rename replaces a symlink at the target itself, never what it points to.
    os.replace(tmp, target)
