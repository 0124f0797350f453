"""Reading the lab hosts from the Ansible inventory (no root needed)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest
import yaml

from hazelog.lab.errors import LabError
from hazelog.lab.inventory import (
    default_state_dir,
    find_inventory,
    load_inventory,
    parse_inventory,
)

REPO = Path(__file__).resolve().parents[2]
LAB_INVENTORY = REPO / "inventory/lab/hosts.yml"


def inventory(groups: dict[str, object], all_vars: dict[str, object] | None = None) -> object:
    return {"all": {"vars": all_vars or {}, "children": groups}}


def parse(data: object) -> list[tuple[str, str]]:
    inv = parse_inventory(data, Path("test.yml"))
    return [(h.name, str(h.address)) for h in inv.hosts]


def test_the_repository_lab_inventory_gives_every_host_with_its_address() -> None:
    raw = yaml.safe_load(LAB_INVENTORY.read_text())
    expected = {
        name: str(host_vars["ansible_host"])
        for group in ("facade", "messages", "logging")
        for name, host_vars in raw["all"]["children"][group]["hosts"].items()
    }
    inv = load_inventory(LAB_INVENTORY)
    assert {h.name: str(h.address) for h in inv.hosts} == expected
    assert len(inv.hosts) >= 5
    assert inv.bridge == "hazelog0"
    assert inv.gateway == IPv4Interface("192.168.77.1/24")
    assert all(h.address in inv.network for h in inv.hosts)


def test_hosts_of_child_groups_count_once_in_group_order() -> None:
    data = inventory(
        {
            "facade": {"hosts": {"f": {"ansible_host": "192.168.77.10"}}},
            "logging": {
                "children": {
                    "logging_a": {"hosts": {"l1": {"ansible_host": "192.168.77.21"}}},
                    "logging_b": {"hosts": {"l2": {"ansible_host": "192.168.77.22"}}},
                }
            },
            "messages": {"hosts": {"m": {"ansible_host": "192.168.77.11"}}},
            # Same host listed again elsewhere, without its address: still one host.
            "monitoring": {"hosts": {"f": None}},
            "other": {"hosts": {"x": {"ansible_host": "192.168.77.99"}}},
        }
    )
    assert parse(data) == [
        ("f", "192.168.77.10"),
        ("m", "192.168.77.11"),
        ("l1", "192.168.77.21"),
        ("l2", "192.168.77.22"),
    ]


def test_bridge_and_gateway_can_be_overridden_in_all_vars() -> None:
    data = inventory(
        {"facade": {"hosts": {"f": {"ansible_host": "10.99.0.5"}}}},
        {"lab_bridge": "labbr1", "lab_gateway": "10.99.0.1/16"},
    )
    inv = parse_inventory(data, Path("x.yml"))
    assert inv.bridge == "labbr1"
    assert inv.gateway == IPv4Interface("10.99.0.1/16")
    assert inv.interface_of(inv.hosts[0]) == IPv4Interface("10.99.0.5/16")


def test_host_lookup_names_the_known_hosts() -> None:
    inv = load_inventory(LAB_INVENTORY)
    assert inv.host("logging3").address == IPv4Address("192.168.77.23")
    with pytest.raises(LabError, match=r"unknown lab host 'nope'.*facade"):
        inv.host("nope")


@pytest.mark.parametrize(
    ("groups", "all_vars", "message"),
    [
        ({"facade": {"hosts": {"f": {}}}}, {}, "f has no ansible_host"),
        ({"facade": {"hosts": {"f": None}}}, {}, "f has no ansible_host"),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "10.0.0.5"}}}},
            {},
            "outside the lab subnet 192.168.77.0/24",
        ),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "192.168.77.1"}}}},
            {},
            "the bridge's own address",
        ),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "192.168.77.255"}}}},
            {},
            "not a host address",
        ),
        (
            {
                "facade": {"hosts": {"f": {"ansible_host": "192.168.77.10"}}},
                "messages": {"hosts": {"m": {"ansible_host": "192.168.77.10"}}},
            },
            {},
            "f and m share the address 192.168.77.10",
        ),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "{{ lookup('env', 'X') }}"}}}},
            {},
            "must be a literal IPv4 address",
        ),
        ({"facade": {"hosts": {"Bad_Name": {"ansible_host": "192.168.77.10"}}}}, {}, "host name"),
        (
            {
                "logging": {
                    "hosts": {
                        "logging-host-a": {"ansible_host": "192.168.77.21"},
                        "logging-host-b": {"ansible_host": "192.168.77.22"},
                    }
                }
            },
            {},
            "first 12 characters",
        ),
        ({"web": {"hosts": {"w": {"ansible_host": "192.168.77.5"}}}}, {}, "no hosts in the groups"),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "192.168.77.10"}}}},
            {"lab_gateway": "not-an-address"},
            "lab_gateway 'not-an-address'",
        ),
        (
            {"facade": {"hosts": {"f": {"ansible_host": "192.168.77.10"}}}},
            {"lab_bridge": "a-name-far-too-long"},
            "not a valid interface name",
        ),
        ({"facade": {"hosts": ["f"]}}, {}, "must be a mapping"),
    ],
)
def test_bad_inventories_are_refused_with_the_reason(
    groups: dict[str, object], all_vars: dict[str, object], message: str
) -> None:
    with pytest.raises(LabError, match=message):
        parse_inventory(inventory(groups, all_vars), Path("bad.yml"))


def test_unreadable_and_invalid_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.yml")
    broken = tmp_path / "broken.yml"
    broken.write_text("all: [unclosed\n")
    with pytest.raises(LabError, match="not valid YAML") as caught:
        load_inventory(broken)
    assert "\n" not in caught.value.message
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("just a string\n")
    with pytest.raises(LabError, match="expected a mapping"):
        load_inventory(scalar)


def test_the_inventory_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    target = tmp_path / "inventory/lab/hosts.yml"
    target.parent.mkdir(parents=True)
    target.write_text("all: {}\n")
    deep = tmp_path / "src/pkg"
    deep.mkdir(parents=True)
    assert find_inventory(deep) == target
    # The state dir matches the key path the inventory uses: {{ inventory_dir }}/../../.lab
    assert default_state_dir(target) == tmp_path.resolve() / ".lab"


def test_no_inventory_anywhere_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="pass --inventory"):
        find_inventory(tmp_path)
