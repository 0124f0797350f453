"""The lab as a whole: up, down, destroy and status over the inventory's hosts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hazelog.lab import bridge, cgroups, machine, ssh
from hazelog.lab.errors import LabError
from hazelog.lab.image import ensure_image, image_path, remove_images
from hazelog.lab.inventory import LabHost, LabInventory
from hazelog.lab.machine import MachineDir
from hazelog.lab.preflight import require_tools
from hazelog.lab.system import remove_tree, tail

STOP_TIMEOUT = 60.0


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    state: str  # "stopped", "starting", or systemd's state: "running", "degraded", ...
    pid: int | None  # systemd-nspawn's PID on the controller
    memory_bytes: int | None  # the machine's cgroup memory (page cache included)

    def as_dict(self) -> dict[str, object]:
        return {
            "host": self.name,
            "address": self.address,
            "state": self.state,
            "pid": self.pid,
            "memory_bytes": self.memory_bytes,
        }


class Lab:
    def __init__(
        self,
        inventory: LabInventory,
        state_dir: Path,
        cache_dir: Path,
        echo: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.inventory = inventory
        self.state_dir = state_dir.resolve()
        self.cache_dir = cache_dir
        self.echo = echo

    def machine_dir(self, name: str) -> MachineDir:
        return MachineDir(self.state_dir, name)

    def known_names(self) -> list[str]:
        """The inventory's hosts, then any clone left from hosts no longer in it."""
        names = [h.name for h in self.inventory.hosts]
        machines = self.state_dir / "machines"
        if machines.is_dir():
            names += sorted(
                d.name for d in machines.iterdir() if d.is_dir() and d.name not in names
            )
        return names

    def _address(self, name: str) -> str:
        for host in self.inventory.hosts:
            if host.name == name:
                return str(host.address)
        return "-"

    def status(self) -> list[HostStatus]:
        result = []
        for name in self.known_names():
            pid = machine.nspawn_pid(self.machine_dir(name))
            if pid is None:
                state, memory = "stopped", None
            else:
                init = machine.init_pid(pid)
                state = "starting" if init is None else machine.system_state(init)
                memory = cgroups.memory_bytes(name)
            result.append(HostStatus(name, self._address(name), state, pid, memory))
        return result

    def _foreign_machines(self) -> set[str]:
        """Lab machines running on this controller that this checkout did not start."""
        ours = {n for n in self.known_names() if self.machine_dir(n).pid_file.exists()}
        return cgroups.running_lab_machines() - ours

    # -- up -------------------------------------------------------------------------------

    def up(self, timeout: float) -> list[HostStatus]:
        foreign = self._foreign_machines()
        if foreign:
            raise LabError(
                f"lab machines from another checkout are running ({', '.join(sorted(foreign))});"
                " run `hazelog lab down` there first"
            )
        inv = self.inventory
        bridge.check_subnet_free(inv.bridge, inv.network)
        to_start = [h for h in inv.hosts if machine.nspawn_pid(self.machine_dir(h.name)) is None]
        image = image_path(self.cache_dir)
        # Existing clones keep the image they were made from; only new ones need this one.
        new_clones = [
            h for h in to_start if machine.recorded_image(self.machine_dir(h.name)) is None
        ]
        if new_clones and not image.is_dir():
            require_tools(["debootstrap", "chroot"])
            image = ensure_image(self.cache_dir, self.echo)
        key = ssh.ensure_keypair(self.state_dir)
        pubkey = ssh.public_key(key)

        started = time.monotonic()
        created_bridge = False
        prepared: list[MachineDir] = []
        launched: list[int] = []
        try:
            created_bridge = bridge.ensure_bridge(inv.bridge, inv.gateway)
            for host in to_start:
                md = self.machine_dir(host.name)
                prepared.append(md)
                machine.prepare_clone(md, host, inv, image, pubkey)
                launched.append(machine.start(md, host, inv.bridge))
            self._wait_ready(key, started + timeout)
        except BaseException:
            self._roll_back(prepared, launched, created_bridge)
            raise
        if to_start:
            self.echo(
                f"started {len(to_start)} of {len(inv.hosts)} hosts in"
                f" {time.monotonic() - started:.1f} s"
            )
        else:
            self.echo(f"all {len(inv.hosts)} hosts were already running")
        return [s for s in self.status() if s.name in {h.name for h in inv.hosts}]

    def _wait_ready(self, key: Path, deadline: float) -> None:
        """Every host: its systemd running (or degraded) and its sshd taking the lab key."""
        abort = threading.Event()

        def wait_one(host: LabHost) -> None:
            md = self.machine_dir(host.name)
            pid = machine.nspawn_pid(md)
            if pid is None:
                raise LabError(
                    f"{host.name}: systemd-nspawn exited at once; console log {md.console_log}:",
                    details=tail(md.console_log),
                )
            machine.wait_booted(md, pid, deadline, abort)
            while not ssh.probe(key, host.address):
                if abort.is_set():
                    return
                if time.monotonic() > deadline:
                    raise LabError(f"{host.name} booted, but SSH to {host.address} does not answer")
                time.sleep(0.1)

        hosts = self.inventory.hosts
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = [pool.submit(wait_one, h) for h in hosts]
            try:
                for future in futures:
                    future.result()
            finally:
                # One host failed (or we were interrupted): the others stop waiting too.
                abort.set()

    def _roll_back(
        self, prepared: list[MachineDir], launched: list[int], bridge_made: bool
    ) -> None:
        """Undo a failed `up`: what it started is stopped, what it mounted unmounted. Best
        effort: the error that made us roll back is the one to report."""
        for pid in launched:
            machine.signal_stop(pid)
        stuck = machine.wait_gone(launched, STOP_TIMEOUT)
        for md in prepared:
            try:
                if stuck:
                    machine.kill_machine(md.name)
                machine.clean_up(md)
            except LabError as exc:
                self.echo(f"while rolling back: {exc.message}")
        try:
            if bridge_made and not cgroups.running_lab_machines():
                bridge.remove_bridge(self.inventory.bridge)
        except LabError as exc:
            self.echo(f"while rolling back: {exc.message}")

    # -- down / destroy --------------------------------------------------------------------

    def down(self) -> int:
        """Power every machine off, then remove cgroups, mounts and the bridge. Returns how
        many machines were stopped."""
        names = self.known_names()
        foreign = self._foreign_machines()
        ours = [n for n in names if n not in foreign]
        pids = {n: pid for n in ours if (pid := machine.nspawn_pid(self.machine_dir(n)))}
        started = time.monotonic()
        for pid in pids.values():
            machine.signal_stop(pid)
        stuck = machine.wait_gone(list(pids.values()), STOP_TIMEOUT)
        for name, pid in pids.items():
            if pid in stuck:
                self.echo(f"{name} did not power off within {STOP_TIMEOUT:.0f} s: killing it")
        for name in ours:
            # Also a machine whose nspawn died but left processes behind.
            if cgroups.processes(name) and self.machine_dir(name).pid_file.exists():
                machine.kill_machine(name)
        for name in ours:
            machine.clean_up(self.machine_dir(name))
        if pids:
            self.echo(f"stopped {len(pids)} hosts in {time.monotonic() - started:.1f} s")
        if foreign:
            self.echo(f"left alone (another checkout's): {', '.join(sorted(foreign))}")
        elif bridge.remove_bridge(self.inventory.bridge):
            self.echo(f"removed bridge {self.inventory.bridge}")
        return len(pids)

    def destroy(self, with_image: bool) -> None:
        self.down()
        machines = self.state_dir / "machines"
        if machines.exists():
            remove_tree(machines)
            self.echo(f"removed the clones in {machines}")
        if with_image:
            if cgroups.running_lab_machines():
                raise LabError("lab machines of another checkout still use the image; not removed")
            for removed in remove_images(self.cache_dir):
                self.echo(f"removed the image {removed}")
