"""The base image: a Debian 12 root file system built once with debootstrap, cached outside
the repository and shared read-only (as the overlay's lower layer) by every lab host.

The machines have no route to any package mirror, so everything a host needs at deploy time
(Python with venv, a JRE for Hazelcast, nftables) is in the image.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from hazelog.lab.errors import LabError
from hazelog.lab.system import remove_tree, run, run_in_own_group, tail, write_inside

DEFAULT_CACHE_DIR = Path("/var/cache/hazelog/lab")
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-venv",
    "openjdk-17-jre-headless",
    "ca-certificates",
    "iproute2",
    "nftables",
    "procps",
    "curl",
    "less",
)
# Bump when prepare_image changes: the image name changes, so a stale cache is not reused.
PREPARE_VERSION = 1

# Units that only make sense on a real, networked machine: they would fire in every host
# for nothing (no mirror, no real disk).
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
)

MINIMAL_HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

SSHD_DROP_IN = """\
# hazelog lab: key logins only; the lab key is in /root/.ssh/authorized_keys.
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""


def image_name() -> str:
    recipe = "\n".join([SUITE, MIRROR, *PACKAGES, str(PREPARE_VERSION)])
    return f"debian-{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def image_path(cache_dir: Path) -> Path:
    return cache_dir / image_name()


def ensure_image(cache_dir: Path, echo: Callable[[str], None]) -> Path:
    """The cached image, built first if missing."""
    path = image_path(cache_dir)
    if path.is_dir():
        return path
    build_image(cache_dir, echo)
    return path


def build_image(cache_dir: Path, echo: Callable[[str], None]) -> float:
    """debootstrap into a temporary directory, prepare it, then rename it into place, so an
    interrupted build is never mistaken for an image. Returns the seconds it took."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = image_path(cache_dir)
    for stale in cache_dir.glob(".build-*"):
        # Only one lab command runs at a time (the lab lock), so any build dir is a leftover.
        remove_tree(stale)
    tmp = cache_dir / f".build-{final.name}-{os.getpid()}"
    log = cache_dir / f"{final.name}.build.log"
    echo(f"building the lab base image {final} (once; about a minute), log: {log}")
    started = time.monotonic()
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(tmp),
        MIRROR,
    ]
    try:
        returncode = run_in_own_group(argv, log)
        if returncode != 0:
            raise LabError(
                f"debootstrap failed with exit code {returncode}; see {log}",
                details=tail(log, 10),
            )
        prepare_image(tmp)
        os.rename(tmp, final)
    except BaseException:
        remove_tree(tmp)
        raise
    seconds = time.monotonic() - started
    echo(f"built {final} in {seconds:.0f} s")
    return seconds


def prepare_image(root: Path) -> None:
    """Make a freshly bootstrapped root a template: nothing in it may identify one machine."""
    # Empty, not missing: an empty machine-id is the documented "not yet set" state; each
    # clone gets its own below /etc of its upper layer.
    (root / "etc/machine-id").write_text("")
    dbus_id = root / "var/lib/dbus/machine-id"
    if dbus_id.exists() or dbus_id.is_symlink():
        dbus_id.unlink()
    dbus_id.symlink_to("/etc/machine-id")
    hostname = root / "etc/hostname"  # the build machine's name
    if hostname.exists():
        hostname.unlink()
    write_inside(root, "etc/hosts", MINIMAL_HOSTS)
    write_inside(root, "etc/ssh/sshd_config.d/hazelog-lab.conf", SSHD_DROP_IN)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # clones must not share host keys
    run(
        ["systemctl", f"--root={root}", "enable", "systemd-networkd.service", "ssh.service"],
        what="enable systemd-networkd and ssh in the image",
    )
    run(
        ["systemctl", f"--root={root}", "disable", *MASKED_UNITS],
        what="disable timers in the image",
    )
    run(
        ["systemctl", f"--root={root}", "mask", *MASKED_UNITS],
        what="mask timers in the image",
    )
    run(["chroot", str(root), "apt-get", "clean"], what="apt-get clean in the image")


def remove_images(cache_dir: Path) -> list[Path]:
    removed = []
    if cache_dir.is_dir():
        for entry in sorted(cache_dir.iterdir()):
            if entry.is_dir():
                remove_tree(entry)
                removed.append(entry)
            elif entry.name.endswith(".build.log"):
                entry.unlink()
    return removed
