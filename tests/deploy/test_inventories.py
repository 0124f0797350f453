"""The two inventories describe the same topology, and the Vagrantfile and the roles read them.

No hosts needed: these read the repository's files."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = {name: REPO / "inventory" / name / "hosts.yml" for name in ("lab", "vagrant")}
GROUPS = ("facade", "messages", "logging")


def hosts_by_group(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    children = data["all"]["children"]
    return {group: dict(children[group]["hosts"]) for group in children}


@pytest.mark.parametrize("name", sorted(INVENTORIES))
def test_each_inventory_has_the_three_groups_with_addresses(name: str) -> None:
    groups = hosts_by_group(INVENTORIES[name])
    assert set(GROUPS) <= set(groups)
    for group in GROUPS:
        assert groups[group], f"{name}: group {group} is empty"
        for host, host_vars in groups[group].items():
            IPv4Address(host_vars["ansible_host"])  # raises on a missing or bad address
            if group == "logging":
                assert isinstance(host_vars["logging_ports"], list), host


def test_lab_and_vagrant_share_hosts_ports_and_last_octets() -> None:
    def shape(path: Path) -> dict[str, dict[str, tuple[int, list[int]]]]:
        return {
            group: {
                host: (
                    int(IPv4Address(v["ansible_host"]).packed[-1]),
                    list(v.get("logging_ports", [])),
                )
                for host, v in hosts.items()
            }
            for group, hosts in hosts_by_group(path).items()
        }

    assert shape(INVENTORIES["lab"]) == shape(INVENTORIES["vagrant"])


def test_vagrant_addresses_are_on_the_vagrant_network_and_lab_on_the_lab_bridge() -> None:
    for name, prefix in (("vagrant", "192.168.56."), ("lab", "192.168.77.")):
        for hosts in hosts_by_group(INVENTORIES[name]).values():
            for host, host_vars in hosts.items():
                assert str(host_vars["ansible_host"]).startswith(prefix), (name, host)


def test_the_hazelcast_role_renders_the_template_hazelog_local_uses() -> None:
    role_template = REPO / "roles/hazelcast/templates/hazelcast.yaml.j2"
    assert (
        role_template.resolve()
        == (REPO / "tools/src/hazelog_tools/templates/hazelcast.yaml.j2").resolve()
    )
