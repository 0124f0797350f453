"""The real lab: `hazelog lab up` boots the inventory's hosts as systemd-nspawn machines.

Runs as root with systemd-nspawn and debootstrap (always in CI). The hosts use a state
directory of their own (a temporary one), so a user's clones are never touched; the lab is
brought down (and the temporary clones destroyed) at the end, even when a test fails.
The tests run in file order: the last ones take the lab down.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import require

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory/lab/hosts.yml"
BRIDGE = "hazelog0"
ECHO_PORT = 7007

ECHO_SERVER = """\
import socketserver, sys

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)

socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("", int(sys.argv[1])), Echo).serve_forever()
"""

ECHO_UNIT = """\
[Unit]
Description=Lab test echo server on port %i

[Service]
DynamicUser=yes
ProtectSystem=strict
PrivateTmp=yes
ExecStart=/usr/bin/python3 /usr/local/lib/lab-echo.py %i
"""


def hazelog_command() -> list[str]:
    script = Path(sys.executable).parent / "hazelog"
    if script.exists():
        return [str(script)]
    found = shutil.which("hazelog")
    assert found, "the hazelog command is not installed (pip install -e .)"
    return [found]


def inventory_hosts() -> dict[str, str]:
    data = yaml.safe_load(INVENTORY.read_text())
    groups = data["all"]["children"]
    return {
        name: str(host_vars["ansible_host"])
        for group in ("facade", "messages", "logging")
        for name, host_vars in groups[group]["hosts"].items()
    }


@dataclass(frozen=True)
class Lab:
    state_dir: Path
    location: list[str]  # --inventory/--state-dir for every hazelog lab command
    hosts: dict[str, str]  # name -> address
    up_stdout: str

    def run(
        self, command: str, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*hazelog_command(), "lab", command, *self.location, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ssh(
        self, host: str, *command: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*hazelog_command(), "lab", "ssh", *self.location, host, *command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def status(self) -> dict[str, dict[str, object]]:
        result = self.run("status", "--json")
        return {row["host"]: row for row in json.loads(result.stdout)}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require(os.geteuid() == 0, "the lab needs root")
    require(shutil.which("systemd-nspawn") is not None, "systemd-nspawn (systemd-container)")
    require(shutil.which("debootstrap") is not None, "debootstrap is missing")
    state_dir = tmp_path_factory.mktemp("lab-state")
    location = ["--inventory", str(INVENTORY), "--state-dir", str(state_dir)]
    lab = Lab(state_dir, location, inventory_hosts(), "")
    try:
        # On a fresh machine this builds the base image first (a minute or two).
        up = lab.run("up", timeout=1200)
        assert up.returncode == 0, f"lab up failed:\n{up.stderr}"
        yield Lab(state_dir, location, lab.hosts, up.stdout)
    finally:
        lab.run("down")
        lab.run("destroy")


def live_processes(comm: str) -> list[tuple[int, str]]:
    """(pid, cmdline) of non-zombie processes with that name."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        state = stat.rsplit(")", 1)[1].split()[0]
        if name == comm and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def lab_cgroups() -> list[Path]:
    return sorted(Path("/sys/fs/cgroup").glob("**/hazelog-lab-*"))


def mounts_below(path: Path) -> list[str]:
    prefix = str(path.resolve())
    return [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]


def connect(address: str, port: int, deadline: float) -> socket.socket:
    while True:
        try:
            return socket.create_connection((address, port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_up_reports_every_inventory_host_running(lab: Lab) -> None:
    rows = [line.split() for line in lab.up_stdout.splitlines()[1:]]
    assert {row[0]: (row[1], row[2]) for row in rows} == {
        name: (address, "running") for name, address in lab.hosts.items()
    }


def test_each_host_runs_its_own_systemd_with_its_own_identity(lab: Lab) -> None:
    identities = {}
    for name in lab.hosts:
        result = lab.ssh(
            name,
            "systemctl is-system-running; hostname; cat /etc/machine-id;"
            " ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
        )
        assert result.returncode == 0, result.stderr
        state, hostname, machine_id, host_key = result.stdout.splitlines()
        assert state == "running", f"{name}: {state}"
        assert hostname == name
        identities[name] = (machine_id, host_key.split()[1])
    assert len({mid for mid, _ in identities.values()}) == len(lab.hosts)
    assert len({key for _, key in identities.values()}) == len(lab.hosts)


def test_ssh_works_with_the_lab_key(lab: Lab) -> None:
    key = lab.state_dir / "ssh/id_ed25519"
    for name, address in lab.hosts.items():
        result = subprocess.run(
            [
                "ssh",
                "-i",
                str(key),
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "LogLevel=ERROR",
                f"root@{address}",
                "hostname",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == name


def test_lab_ssh_passes_the_exit_code_through(lab: Lab) -> None:
    host = next(iter(lab.hosts))
    assert lab.ssh(host, "exit", "3").returncode == 3
    failed = lab.ssh(host, "systemctl", "stop", "no-such-unit@20002")
    assert failed.returncode != 0
    assert "no-such-unit@20002" in failed.stderr


def test_every_host_reaches_every_other_by_address_and_name(lab: Lab) -> None:
    probe = (
        "import socket, sys\n"
        "for target in sys.argv[1:]:\n"
        "    try:\n"
        "        socket.create_connection((target, 22), timeout=5).close()\n"
        "        print(target, 'ok')\n"
        "    except OSError as exc:\n"
        "        print(target, 'failed', exc)\n"
    )
    for name in lab.hosts:
        others = [h for h in lab.hosts if h != name]
        targets = [lab.hosts[h] for h in others] + others
        result = lab.ssh(name, "python3", "-", *targets, stdin=probe)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{t} ok" for t in targets], f"from {name}"


def test_a_template_unit_starts_answers_and_stops(lab: Lab) -> None:
    host = next(h for h in lab.hosts if h.startswith("logging"))
    address = lab.hosts[host]
    install = (
        f"cat > /usr/local/lib/lab-echo.py <<'EOF'\n{ECHO_SERVER}EOF\n"
        f"cat > /etc/systemd/system/echo@.service <<'EOF'\n{ECHO_UNIT}EOF\n"
        "systemctl daemon-reload\n"
        f"systemctl start echo@{ECHO_PORT}\n"
    )
    result = lab.ssh(host, "bash", "-s", stdin=install)
    assert result.returncode == 0, result.stderr

    with connect(address, ECHO_PORT, time.monotonic() + 30) as conn:
        conn.sendall(b"hello lab\n")
        assert conn.makefile("rb").readline() == b"hello lab\n"

    user = lab.ssh(host, f"ps -o user= -p $(systemctl show -P MainPID echo@{ECHO_PORT})")
    assert user.returncode == 0, user.stderr
    assert user.stdout.strip() not in ("", "root")  # DynamicUser gave it a user of its own

    assert lab.ssh(host, "systemctl", "stop", f"echo@{ECHO_PORT}").returncode == 0
    state = lab.ssh(host, "systemctl", "is-active", f"echo@{ECHO_PORT}")
    assert state.stdout.strip() == "inactive"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, ECHO_PORT), timeout=5).close()


def test_a_second_up_changes_nothing(lab: Lab) -> None:
    before = lab.status()
    assert all(row["state"] == "running" for row in before.values())
    again = lab.run("up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    after = lab.status()
    assert {h: r["pid"] for h, r in after.items()} == {h: r["pid"] for h, r in before.items()}


def test_hosts_keep_their_state_across_down_and_up(lab: Lab) -> None:
    host = next(iter(lab.hosts))
    marker = f"kept-{time.time_ns()}"
    assert lab.ssh(host, f"echo {marker} > /root/marker").returncode == 0
    machine_id = lab.ssh(host, "cat", "/etc/machine-id").stdout
    assert lab.run("down").returncode == 0
    assert lab.status()[host]["state"] == "stopped"
    up = lab.run("up")
    assert up.returncode == 0, up.stderr
    assert lab.ssh(host, "cat", "/root/marker").stdout.strip() == marker
    assert lab.ssh(host, "cat", "/etc/machine-id").stdout == machine_id


def test_down_leaves_no_machine_bridge_cgroup_or_mount(lab: Lab) -> None:
    result = lab.run("down")
    assert result.returncode == 0, result.stderr
    state_dir = str(lab.state_dir)
    assert [p for p in live_processes("systemd-nspawn") if state_dir in p[1]] == []
    assert live_processes("systemd-nspawn") == []
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    assert lab_cgroups() == []
    assert mounts_below(lab.state_dir) == []
    assert all(row["state"] == "stopped" for row in lab.status().values())
    assert lab.run("status").returncode == 3


def test_destroy_removes_the_clones_and_keeps_the_image(lab: Lab) -> None:
    assert (lab.state_dir / "machines").is_dir()
    result = lab.run("destroy")
    assert result.returncode == 0, result.stderr
    assert not (lab.state_dir / "machines").exists()
    assert (lab.state_dir / "ssh/id_ed25519").is_file()
    assert list(Path("/var/cache/hazelog/lab").glob("debian-*/etc/os-release"))
