"""Driving the Vagrant hosts from the deploy tests: Vagrant's own commands, SSH, systemctl,
health, the facade.

Hosts come and go with `vagrant up/halt/destroy`. Commands on the hosts go over SSH with the
configuration `vagrant ssh-config` prints (the same keys and options as `vagrant ssh`,
without starting Ruby for every command); HTTP goes straight from the controller (the
firewall lets it in), and only after tests.deploy.network found the hosts on a local link.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require
from tests.deploy.ansible import ANSIBLE_PLAYBOOK, ansible_playbook
from tests.deploy.network import INVENTORY, REPO, check_address

MEMBER_PORT_OFFSET = 1000
# Bounds on waiting for the cluster (JVM start, join, partition migration).
RECOVERY_TIMEOUT = 240.0
SSH_CONFIG = REPO / ".vagrant/ssh-config"


@dataclass(frozen=True)
class Instance:
    """One logging instance and its member."""

    host: str
    address: str
    port: int

    @property
    def member_port(self) -> int:
        return self.port + MEMBER_PORT_OFFSET

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"

    def health_url(self, check: str) -> str:
        return f"http://{self.address}:{self.member_port}/hazelcast/health/{check}"

    @property
    def units(self) -> tuple[str, str]:
        return (f"logging@{self.port}.service", f"hazelcast@{self.port}.service")


@dataclass(frozen=True)
class Lab:
    addresses: dict[str, str]
    instances: tuple[Instance, ...]
    facade_host: str
    messages_host: str
    database_host: str

    @classmethod
    def from_inventory(cls, path: Path = INVENTORY) -> Lab:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        groups = data["all"]["children"]
        addresses = {
            name: str(host["ansible_host"])
            for group in groups.values()
            for name, host in group["hosts"].items()
        }
        instances = tuple(
            Instance(name, str(host["ansible_host"]), int(port))
            for name, host in groups["logging"]["hosts"].items()
            for port in host["logging_ports"]
        )
        return cls(
            addresses=addresses,
            instances=instances,
            facade_host=next(iter(groups["facade"]["hosts"])),
            messages_host=next(iter(groups["messages"]["hosts"])),
            database_host=next(iter(groups["database"]["hosts"])),
        )

    @property
    def facade_url(self) -> str:
        return f"http://{self.addresses[self.facade_host]}:8080/"

    def instance(self, port: int) -> Instance:
        return next(i for i in self.instances if i.port == port)

    # -- commands on the hosts -------------------------------------------------------------

    def ssh_argv(self, host: str, command: str) -> list[str]:
        """ssh as `vagrant ssh HOST -c 'sudo COMMAND'` would run it."""
        return ["ssh", "-F", str(SSH_CONFIG), "-o", "LogLevel=ERROR", host, f"sudo {command}"]

    def ssh(
        self, host: str, command: str, *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.ssh_argv(host, command),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{host}: `{command}` exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result

    def ssh_together(self, commands: Sequence[tuple[str, str]], timeout: float = 120) -> None:
        """Run (host, command) pairs at the same moment (one SSH each, started back to back)."""
        processes = [
            (host, command, subprocess.Popen(
                self.ssh_argv(host, command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ))
            for host, command in commands
        ]  # fmt: skip
        failures = []
        for host, command, process in processes:
            output, _ = process.communicate(timeout=timeout)
            if process.returncode != 0:
                failures.append(f"{host}: `{command}` exited {process.returncode}: {output}")
        assert not failures, failures

    def unit_property(self, host: str, unit: str, name: str) -> str:
        return self.ssh(host, f"systemctl show -p {name} --value {unit}").stdout.strip()

    def probe_tcp(self, host: str, targets: Sequence[tuple[str, int]]) -> dict[str, bool]:
        """From `host`: can it open a TCP connection to each (address, port)? A dropped SYN
        and a refused connection both count as no."""
        script = (
            "import json, socket, sys\n"
            "out = {}\n"
            "for address, port in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        socket.create_connection((address, port), timeout=3).close()\n"
            "        out[f'{address}:{port}'] = True\n"
            "    except OSError:\n"
            "        out[f'{address}:{port}'] = False\n"
            "print(json.dumps(out))\n"
        )
        command = f"python3 -c {_quote(script)} {_quote(json.dumps(list(targets)))}"
        result: dict[str, bool] = json.loads(self.ssh(host, command).stdout)
        return result

    # -- whole hosts, with Vagrant ------------------------------------------------------

    def halt(self, *hosts: str) -> None:
        run_vagrant("halt", *hosts)

    def up(self, *hosts: str) -> None:
        run_vagrant("up", *hosts)
        write_ssh_config()

    def running(self, host: str) -> bool:
        return machine_states().get(host) == "running"


def run_vagrant(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    require(shutil.which("vagrant") is not None, "vagrant is missing (make system-deps)")
    result = subprocess.run(
        ["vagrant", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"vagrant {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def machine_states() -> dict[str, str]:
    """{host: state} from `vagrant status --machine-readable` (running, stopped, not_created)."""
    output = run_vagrant("status", "--machine-readable").stdout
    states = {}
    for line in output.splitlines():
        fields = line.split(",")
        if len(fields) >= 4 and fields[2] == "state":
            states[fields[1]] = fields[3]
    return states


def write_ssh_config() -> None:
    SSH_CONFIG.write_text(run_vagrant("ssh-config").stdout, encoding="utf-8")


def hosts_up() -> Lab:
    """The hosts of the inventory running (`vagrant up`), on a local link, reachable over SSH."""
    require(os.geteuid() == 0, "the lxc provider needs root")
    require(ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing")
    run_vagrant("up")
    write_ssh_config()
    lab = Lab.from_inventory()
    for address in lab.addresses.values():
        check_address(address)
    return lab


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# -- HTTP from the controller ------------------------------------------------------------------


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> tuple[int | None, dict[str, str], bytes]:
    """(status, headers with lower-case names, body); status None when nothing answered."""
    check_address(urllib.parse.urlsplit(url).hostname or "")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = {k.lower(): v for k, v in response.headers.items()}
            return int(response.status), answer, bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
    except (OSError, urllib.error.URLError):
        return None, {}, b""


def stored_messages(lab: Lab) -> list[dict[str, Any]]:
    status, _, body = http("GET", lab.facade_url, headers={"Accept": "application/json"})
    assert status == 200, (status, body[:300])
    messages: list[dict[str, Any]] = json.loads(body)["messages"]
    return messages


def cluster_size(instance: Instance) -> int | None:
    status, _, body = http("GET", instance.health_url("cluster-size"), timeout=3)
    if status != 200:
        return None
    try:
        return int(body.strip())
    except ValueError:
        return None


def cluster_safe(instance: Instance) -> bool:
    return http("GET", instance.health_url("cluster-safe"), timeout=3)[0] == 200


def instance_ready(instance: Instance) -> bool:
    return http("GET", instance.url + "ready", timeout=3)[0] == 200


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `predicate` once a second; returns the seconds it took. A bound, not a timing
    assertion: it only turns "never" into a failure."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(1)
    return time.monotonic() - started


def whole_and_safe(lab: Lab) -> bool:
    size = len(lab.instances)
    return all(
        cluster_size(i) == size and cluster_safe(i) and instance_ready(i) for i in lab.instances
    )


def run_playbook(playbook: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """A playbook against the default inventory (ansible.cfg): the Vagrant hosts."""
    return ansible_playbook(playbook, timeout=timeout)


def restore(lab: Lab) -> None:
    """Every unit started again, the cluster whole, safe and every instance ready."""
    for instance in lab.instances:
        lab.ssh(instance.host, f"systemctl start {' '.join(instance.units)}")
    lab.ssh(lab.messages_host, "systemctl start messages.service")
    wait_until(lambda: whole_and_safe(lab), RECOVERY_TIMEOUT, "cluster whole and safe again")
