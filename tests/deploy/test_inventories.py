"""The inventory describes the topology the Vagrantfile and the roles read.

No hosts needed: these read the repository's files (and ask Vagrant how it reads them)."""

from __future__ import annotations

import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory/vagrant/hosts.yml"
GROUPS = ("facade", "messages", "logging")


def hosts_by_group(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    children = data["all"]["children"]
    return {group: dict(children[group]["hosts"]) for group in children}


def test_the_inventory_has_the_three_groups_with_addresses_on_its_network() -> None:
    network = IPv4Network(yaml.safe_load(INVENTORY.read_text())["all"]["vars"]["vagrant_network"])
    groups = hosts_by_group(INVENTORY)
    assert set(GROUPS) <= set(groups)
    for group in GROUPS:
        assert groups[group], f"group {group} is empty"
        for host, host_vars in groups[group].items():
            assert IPv4Address(host_vars["ansible_host"]) in network, host
            if group == "logging":
                assert isinstance(host_vars["logging_ports"], list), host


def test_vagrant_defines_a_machine_per_inventory_host_and_picks_lxc_first() -> None:
    require(shutil.which("vagrant") is not None, "vagrant is missing (make system-deps)")
    result = subprocess.run(
        ["vagrant", "status", "--machine-readable"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    providers = {
        fields[1]: fields[3]
        for fields in (line.split(",") for line in result.stdout.splitlines())
        if len(fields) >= 4 and fields[2] == "provider-name"
    }
    inventory_hosts = {host for hosts in hosts_by_group(INVENTORY).values() for host in hosts}
    assert set(providers) == inventory_hosts
    require(shutil.which("lxc-start") is not None, "vagrant-lxc/lxc are missing (make system-deps)")
    assert set(providers.values()) == {"lxc"}, providers


def test_the_hazelcast_role_renders_the_template_hazelog_local_uses() -> None:
    role_template = REPO / "roles/hazelcast/templates/hazelcast.yaml.j2"
    assert (
        role_template.resolve()
        == (REPO / "tools/src/hazelog_tools/templates/hazelcast.yaml.j2").resolve()
    )
