"""Checks before a lab command touches anything: root, and the tools it runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable

from hazelog.lab.errors import LabError

# The Debian package that provides each tool the lab runs.
TOOL_PACKAGES = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "chroot": "coreutils",
    "systemctl": "systemd",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}


def require_root(euid: Callable[[], int] | None = None) -> None:
    if (euid or os.geteuid)() != 0:
        raise LabError(
            "the lab needs root (it makes a bridge, mounts and machines): run it as root"
        )


def require_tools(tools: Iterable[str], which: Callable[[str], str | None] | None = None) -> None:
    find = which or shutil.which
    missing = [tool for tool in tools if find(tool) is None]
    if not missing:
        return
    packages = sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing})
    raise LabError(
        f"missing {', '.join(missing)}: install the Debian package"
        f"{'s' if len(packages) > 1 else ''} {' '.join(packages)}"
        f" (apt-get install -y {' '.join(packages)})"
    )
