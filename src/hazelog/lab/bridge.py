"""The lab bridge: the controller's address on the lab subnet and the machines' only link.

The machines get an address but no default route, so through the bridge they reach each
other and the controller's bridge address, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

from hazelog.lab.errors import LabError
from hazelog.lab.system import run

SYS_CLASS_NET = Path("/sys/class/net")


def ipv4_addresses(ip_json: Sequence[Mapping[str, object]]) -> list[tuple[str, IPv4Interface]]:
    """(interface, address) pairs from `ip -j addr` output."""
    found = []
    for link in ip_json:
        name = str(link.get("ifname", "?"))
        infos = link.get("addr_info") or []
        if not isinstance(infos, list):
            continue
        for info in infos:
            if isinstance(info, Mapping) and info.get("family") == "inet":
                found.append((name, IPv4Interface(f"{info['local']}/{info['prefixlen']}")))
    return found


def find_collision(
    ip_json: Sequence[Mapping[str, object]], bridge: str, network: IPv4Network
) -> tuple[str, IPv4Interface] | None:
    """An address on another interface whose subnet overlaps the lab's; ours does not count."""
    for name, address in ipv4_addresses(ip_json):
        if name != bridge and address.network.overlaps(network):
            return name, address
    return None


def read_ip_json() -> list[Mapping[str, object]]:
    out = run(["ip", "-j", "addr", "show"], what="list the network addresses")
    data = json.loads(out or "[]")
    if not isinstance(data, list):
        raise LabError("`ip -j addr show` printed something unexpected")
    return data


def check_subnet_free(bridge: str, network: IPv4Network) -> None:
    collision = find_collision(read_ip_json(), bridge, network)
    if collision is not None:
        name, address = collision
        raise LabError(
            f"the lab subnet {network} is already in use: {name} has {address}; free it or set"
            " another lab_gateway (and host addresses) in the inventory"
        )


def bridge_exists(name: str, sys_class_net: Path = SYS_CLASS_NET) -> bool:
    link = sys_class_net / name
    if not link.exists():
        return False
    if not (link / "bridge").is_dir():
        raise LabError(f"a network interface named {name} exists but is not a bridge")
    return True


def ensure_bridge(name: str, gateway: IPv4Interface) -> bool:
    """Create the bridge if missing, give it the gateway address and bring it up.
    Returns whether it was created (so a failed `up` can remove it again)."""
    created = False
    if not bridge_exists(name):
        run(["ip", "link", "add", name, "type", "bridge"], what=f"create bridge {name}")
        created = True
    try:
        run(
            ["ip", "addr", "replace", str(gateway), "dev", name],
            what=f"set address {gateway} on {name}",
        )
        run(["ip", "link", "set", name, "up"], what=f"bring {name} up")
    except LabError:
        if created:
            remove_bridge(name)
        raise
    return created


def remove_bridge(name: str) -> bool:
    if not bridge_exists(name):
        return False
    run(["ip", "link", "delete", name, "type", "bridge"], what=f"remove bridge {name}")
    return True
