"""The lab's error paths that need no root: not root, missing tools, subnet collision, the
lock, unknown hosts. Each ends a command with one line and a non-zero exit."""

from __future__ import annotations

import os
import shutil
from ipaddress import IPv4Network
from pathlib import Path

import pytest
from click.testing import CliRunner

from hazelog.lab import bridge, cli, machine, preflight
from hazelog.lab.bridge import check_subnet_free, find_collision
from hazelog.lab.errors import LabError
from hazelog.lab.lock import lab_lock

LAB_NET = IPv4Network("192.168.77.0/24")
INVENTORY = str(Path(__file__).resolve().parents[2] / "inventory/lab/hosts.yml")


def ip_json(*links: tuple[str, list[str]]) -> list[dict[str, object]]:
    """Fake `ip -j addr` output: (ifname, ["addr/prefix", ...]) per link."""
    result: list[dict[str, object]] = []
    for index, (name, addresses) in enumerate(links, start=1):
        infos: list[dict[str, object]] = []
        for address in addresses:
            local, prefix = address.split("/")
            family = "inet6" if ":" in local else "inet"
            infos.append({"family": family, "local": local, "prefixlen": int(prefix)})
        result.append({"ifindex": index, "ifname": name, "addr_info": infos})
    return result


def test_an_address_in_the_lab_subnet_on_another_interface_collides() -> None:
    links = ip_json(("lo", ["127.0.0.1/8", "::1/128"]), ("eth1", ["192.168.77.40/24"]))
    collision = find_collision(links, "hazelog0", LAB_NET)
    assert collision is not None
    assert collision[0] == "eth1"
    assert str(collision[1]) == "192.168.77.40/24"


def test_a_wider_subnet_that_contains_the_lab_collides() -> None:
    links = ip_json(("wlan0", ["192.168.5.7/16"]))
    assert find_collision(links, "hazelog0", LAB_NET) is not None


def test_our_own_bridge_and_other_subnets_do_not_collide() -> None:
    links = ip_json(
        ("lo", ["127.0.0.1/8"]),
        ("eth0", ["192.0.2.2/24", "fd00::2/64"]),
        ("hazelog0", ["192.168.77.1/24"]),
        ("eth1", ["192.168.78.1/24"]),
    )
    assert find_collision(links, "hazelog0", LAB_NET) is None


def test_subnet_collision_message_names_the_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge, "read_ip_json", lambda: ip_json(("docker0", ["192.168.77.9/24"])))
    with pytest.raises(LabError) as caught:
        check_subnet_free("hazelog0", LAB_NET)
    message = caught.value.message
    assert "192.168.77.0/24" in message
    assert "docker0" in message
    assert "192.168.77.9/24" in message
    assert "\n" not in message


def test_not_root_is_refused() -> None:
    with pytest.raises(LabError, match="needs root"):
        preflight.require_root(lambda: 1000)
    preflight.require_root(lambda: 0)


def test_missing_tools_name_their_debian_package() -> None:
    present = {"ip": "/usr/sbin/ip"}
    with pytest.raises(LabError) as caught:
        preflight.require_tools(["ip", "systemd-nspawn", "debootstrap"], present.get)
    message = caught.value.message
    assert "systemd-nspawn" in message
    assert "systemd-container" in message
    assert "debootstrap" in message
    assert "apt-get install -y debootstrap systemd-container" in message
    preflight.require_tools(["ip"], present.get)


def test_lock_held_by_another_command_fails_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "lab.lock"
    with lab_lock(lock):
        # flock locks belong to an open file: a second open conflicts even in this process.
        with pytest.raises(LabError) as caught, lab_lock(lock):
            pass
        assert f"pid {os.getpid()}" in caught.value.message
        assert str(lock) in caught.value.message
    with lab_lock(lock):  # released: free again
        pass


def _invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli.lab, args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("command", ["up", "down", "destroy", "status"])
def test_cli_as_non_root_exits_with_one_line(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, stderr = _invoke([command])
    assert code == 1
    assert stderr.count("\n") == 1
    assert stderr.startswith("hazelog lab: error: the lab needs root")


def test_cli_without_nspawn_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda tool: None if "nspawn" in tool else "/x")
    code, stderr = _invoke(["up"])
    assert code == 1
    assert "systemd-container" in stderr
    assert stderr.count("\n") == 1


def test_cli_ssh_to_an_unknown_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    code, stderr = _invoke(["ssh", "--inventory", INVENTORY, "nosuchhost", "true"])
    assert code == 1
    assert "unknown lab host 'nosuchhost'" in stderr


def test_cli_ssh_passes_the_command_through_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(machine, "nspawn_pid", lambda md: 4242)
    calls: list[list[str]] = []

    def fake_exec(file: str, argv: list[str]) -> None:
        calls.append(argv)

    monkeypatch.setattr(os, "execvp", fake_exec)
    code, _ = _invoke(
        ["ssh", "--inventory", INVENTORY, "logging3", "systemctl", "stop", "logging@20002", "-l"]
    )
    assert code == 0
    (argv,) = calls
    assert argv[0] == "ssh"
    assert "root@192.168.77.23" in argv
    assert argv[-5:] == ["--", "systemctl", "stop", "logging@20002", "-l"]


def test_cli_ssh_to_a_stopped_host_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    code, stderr = _invoke(
        ["ssh", "--inventory", INVENTORY, "--state-dir", str(tmp_path), "facade", "true"]
    )
    assert code == 1
    assert "facade is not running" in stderr
