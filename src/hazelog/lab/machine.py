"""One lab host: its overlay clone of the image, its identity, its systemd-nspawn process.

State per host lives in <state-dir>/machines/<host>/: upper/ and work/ (the overlay's
writable layer: everything the host changed, kept across down/up), merged/ (the mounted
root), image (which image is the lower layer), console.log, nspawn.pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from hazelog.lab import cgroups
from hazelog.lab.errors import LabError
from hazelog.lab.inventory import LabHost, LabInventory
from hazelog.lab.system import is_mountpoint, run, tail, unmount_all, write_inside

BOOTED_STATES = ("running", "degraded")
# Java services open many files (Hazelcast: sockets, jars): ask for a high ceiling for the
# machine's systemd, which hands services 1024 soft and this hard limit (the JVM raises its
# soft limit to the hard one). The kernel clamps it to what the controller allows: on
# controllers without CAP_SYS_RESOURCE (this project's build VMs) that is 20000.
NOFILE_LIMIT = "RLIMIT_NOFILE=65536:524288"


@dataclass(frozen=True)
class MachineDir:
    """Paths of one host's state below <state-dir>/machines/<name>."""

    state_dir: Path
    name: str

    @property
    def root(self) -> Path:
        return self.state_dir / "machines" / self.name

    @property
    def upper(self) -> Path:
        return self.root / "upper"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def image_file(self) -> Path:
        return self.root / "image"

    @property
    def console_log(self) -> Path:
        return self.root / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "nspawn.pid"


def _proc_alive(pid: int) -> bool:
    """A process exists and is not a zombie (our PID 1 reaps orphans only now and then)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def nspawn_pid(md: MachineDir) -> int | None:
    """The PID of this host's running systemd-nspawn, checked (not a reused PID)."""
    try:
        pid = int(md.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    own = f"/{cgroups.PREFIX}{md.name}"
    paths = [line.split(":", 2)[2] for line in cgroup.splitlines() if line.count(":") >= 2]
    if comm != "systemd-nspawn" or not any(p == own or p.startswith(own + "/") for p in paths):
        return None
    return pid if _proc_alive(pid) else None


def init_pid(nspawn: int) -> int | None:
    """The machine's PID 1 (its systemd), a child of systemd-nspawn, as seen from here."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if comm == "systemd" and int(fields[1]) == nspawn:
            return int(entry.name)
    return None


def system_state(init: int) -> str:
    """`systemctl is-system-running` inside the machine; before dbus is up it fails, which
    reads as "starting"."""
    try:
        result = subprocess.run(
            ["nsenter", "-t", str(init), "-a", "systemctl", "is-system-running"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "starting"
    return result.stdout.strip() or "starting"


def recorded_image(md: MachineDir) -> Path | None:
    """The image an existing clone was made from (its overlay's lower layer), if any."""
    try:
        return Path(md.image_file.read_text().strip())
    except FileNotFoundError:
        return None


def prepare_clone(
    md: MachineDir, host: LabHost, inventory: LabInventory, image: Path, pubkey: str
) -> None:
    """Mount the host's overlay and write what makes it this host. Identity (machine-id, SSH
    host keys) is made once; what derives from the inventory is rewritten at every start."""
    for directory in (md.upper, md.work, md.merged):
        directory.mkdir(parents=True, exist_ok=True)
    recorded = recorded_image(md)
    if recorded is not None:
        lower = recorded
        if not lower.is_dir():
            raise LabError(
                f"{host.name} was cloned from the image {lower}, which is gone;"
                " `hazelog lab destroy` removes the clones so that `up` makes new ones"
            )
    else:
        lower = image
        md.image_file.write_text(f"{lower}\n")
    if not is_mountpoint(md.merged):
        for path in (lower, md.upper, md.work):
            if any(c in str(path) for c in ",:\\"):
                raise LabError(f"the overlay cannot use {path}: no ',', ':' or '\\' in lab paths")
        run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={lower},upperdir={md.upper},workdir={md.work}",
                str(md.merged),
            ],
            what=f"mount the overlay of {host.name}",
        )
    root = md.merged
    machine_id = root / "etc/machine-id"
    if machine_id.is_symlink() or not machine_id.is_file() or not machine_id.read_text().strip():
        write_inside(root, "etc/machine-id", f"{uuid.uuid4().hex}\n", mode=0o444)
    if not (root / "etc/ssh/ssh_host_ed25519_key").exists():
        if (root / "etc/ssh").is_symlink():
            raise LabError(f"refusing to write through the symlink {root / 'etc/ssh'}")
        run(["ssh-keygen", "-A", "-f", str(root)], what=f"make SSH host keys for {host.name}")

    address = inventory.interface_of(host)
    hosts_lines = [
        "# Written by `hazelog lab up` from the lab inventory at every start.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        *(f"{h.address}\t{h.name}" for h in inventory.hosts),
    ]
    write_inside(root, "etc/hostname", f"{host.name}\n")
    write_inside(root, "etc/hosts", "\n".join(hosts_lines) + "\n")
    write_inside(
        root,
        "etc/systemd/network/10-host0.network",
        f"# Written by `hazelog lab up`: the lab address, no gateway (the lab reaches only"
        f" itself).\n[Match]\nName=host0\n\n[Network]\nAddress={address}\n"
        "LinkLocalAddressing=no\nIPv6AcceptRA=no\n",
    )
    write_inside(root, "root/.ssh/authorized_keys", f"{pubkey}\n", mode=0o600, dir_mode=0o700)


def start(md: MachineDir, host: LabHost, bridge: str) -> int:
    """Boot the clone in its own cgroup, detached; returns systemd-nspawn's PID."""
    stale = cgroups.processes(host.name)
    if stale:
        raise LabError(
            f"a lab machine named {host.name} is already running outside this checkout's state"
            f" (processes {sorted(stale)[:3]} in {cgroups.machine_cgroups(host.name)[0]});"
            " stop it with `hazelog lab down` where it was started"
        )
    cgroups.remove(host.name)  # an empty leftover from a crash
    procs_files = cgroups.create(host.name)
    argv = [
        "systemd-nspawn",
        "--boot",
        "--quiet",
        f"--directory={md.merged}",
        f"--machine={host.name}",
        # There is no host systemd/machined to register with or to make a scope for us.
        "--register=no",
        "--keep-unit",
        # The machine's console (systemd's boot and shutdown lines) goes to console.log.
        "--console=read-only",
        f"--network-bridge={bridge}",
        "--link-journal=no",
        f"--rlimit={NOFILE_LIMIT}",
        # Arguments for the machine's systemd: print unit status lines on the console, so a
        # console log shows where a boot got stuck.
        "systemd.show_status=yes",
    ]
    with md.console_log.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Join the cgroups between fork and exec, so nspawn starts in them.
            preexec_fn=partial(cgroups.join, procs_files),
        )
    # Not waited for: the machine outlives this command, and the orphan is reaped by PID 1
    # (late, on this controller: the liveness checks treat a zombie as gone).
    md.pid_file.write_text(f"{process.pid}\n")
    return process.pid


def wait_booted(
    md: MachineDir, pid: int, deadline: float, abort: threading.Event | None = None
) -> str:
    """Poll until the machine's systemd is running (or degraded); error with the console tail
    if nspawn exits or the deadline passes. Returns early when `abort` is set."""
    state = "starting"
    while abort is None or not abort.is_set():
        if not _proc_alive(pid):
            raise LabError(
                f"{md.name}: systemd-nspawn exited while booting; console log {md.console_log}:",
                details=tail(md.console_log),
            )
        init = init_pid(pid)
        if init is not None:
            state = system_state(init)
            if state in BOOTED_STATES:
                return state
        if time.monotonic() > deadline:
            raise LabError(
                f"{md.name} did not boot in time (systemd state: {state});"
                f" console log {md.console_log}:",
                details=tail(md.console_log),
            )
        time.sleep(0.1)
    return state


def signal_stop(pid: int) -> None:
    """SIGTERM to systemd-nspawn makes it power the machine off cleanly."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait for the processes to exit; returns those still alive at the timeout."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _proc_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _proc_alive(p)]
    return alive


def kill_machine(name: str) -> None:
    """Last resort after a timed-out poweroff: SIGKILL everything in the machine's cgroup."""
    for pid in cgroups.processes(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def clean_up(md: MachineDir) -> None:
    """After the machine's processes are gone: its cgroups, its mounts, its PID file."""
    deadline = time.monotonic() + 10
    while cgroups.processes(md.name) and time.monotonic() < deadline:
        time.sleep(0.05)
    cgroups.remove(md.name)
    if md.merged.exists():
        unmount_all(md.merged)
    md.pid_file.unlink(missing_ok=True)
