"""Lab hosts from the Ansible inventory (inventory/lab/hosts.yml), the single source of truth.

Only what the lab needs is read: every host of the groups facade, messages and logging
(child groups included) with its `ansible_host` address, and the optional `all.vars`
`lab_bridge` / `lab_gateway` overrides of the bridge name and its address.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import AddressValueError, IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path

import yaml

from hazelog.lab.errors import LabError

LAB_GROUPS = ("facade", "messages", "logging")
DEFAULT_BRIDGE = "hazelog0"
DEFAULT_GATEWAY = IPv4Interface("192.168.77.1/24")
INVENTORY_RELPATH = Path("inventory/lab/hosts.yml")

# A host name is also the machine name, its hostname and part of the host-side veth name.
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
# nspawn names the host side of a machine's veth "vb-" + the name, cut to 15 bytes.
_VETH_CHARS = 12
# Linux interface names: at most 15 bytes, no slash or whitespace.
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


@dataclass(frozen=True)
class LabHost:
    name: str
    address: IPv4Address


@dataclass(frozen=True)
class LabInventory:
    path: Path
    hosts: tuple[LabHost, ...]
    bridge: str = DEFAULT_BRIDGE
    gateway: IPv4Interface = DEFAULT_GATEWAY

    @property
    def network(self) -> IPv4Network:
        return self.gateway.network

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise LabError(f"unknown lab host {name!r} (the inventory has: {known})")

    def interface_of(self, host: LabHost) -> IPv4Interface:
        """The host's address with the lab prefix length, as configured on its host0."""
        return IPv4Interface(f"{host.address}/{self.network.prefixlen}")


def find_inventory(start: Path) -> Path:
    """inventory/lab/hosts.yml in `start` or the nearest parent directory holding one."""
    for directory in (start, *start.parents):
        candidate = directory / INVENTORY_RELPATH
        if candidate.is_file():
            return candidate
    raise LabError(f"no {INVENTORY_RELPATH} in {start} or any parent directory; pass --inventory")


def default_state_dir(inventory_path: Path) -> Path:
    """The checkout's .lab: the inventory refers to the key as {{ inventory_dir }}/../../.lab."""
    return inventory_path.resolve().parent.parent.parent / ".lab"


def load_inventory(path: Path) -> LabInventory:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabError(f"cannot read inventory {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise LabError(f"inventory {path} is not valid YAML: {first_line}") from exc
    return parse_inventory(data, path)


def parse_inventory(data: object, path: Path) -> LabInventory:
    if not isinstance(data, Mapping):
        raise LabError(f"inventory {path}: expected a mapping of groups at the top")
    groups = _collect_groups(data, path)
    names: list[str] = []
    for group in LAB_GROUPS:
        for name in _hosts_of(group, groups, path, seen=set()):
            if name not in names:
                names.append(name)
    if not names:
        raise LabError(f"inventory {path}: no hosts in the groups {', '.join(LAB_GROUPS)}")

    bridge, gateway = _lab_settings(data, path)
    hosts: list[LabHost] = []
    for name in names:
        if not _HOSTNAME.match(name):
            raise LabError(
                f"inventory {path}: host name {name!r} must be lower-case letters, digits and"
                " dashes, at most 32 characters"
            )
        address = _host_address(name, groups, path)
        if address not in gateway.network:
            raise LabError(
                f"inventory {path}: {name} has ansible_host {address}, outside the lab subnet"
                f" {gateway.network}"
            )
        if address in (gateway.network.network_address, gateway.network.broadcast_address):
            raise LabError(
                f"inventory {path}: {name} has ansible_host {address}, not a host address"
            )
        if address == gateway.ip:
            raise LabError(
                f"inventory {path}: {name} has ansible_host {address}, the bridge's own address"
            )
        for other in hosts:
            if other.name[:_VETH_CHARS] == name[:_VETH_CHARS]:
                raise LabError(
                    f"inventory {path}: {other.name} and {name} must differ in their first"
                    f" {_VETH_CHARS} characters (the bridge port is named vb-<host>, 15 bytes max)"
                )
            if other.address == address:
                raise LabError(
                    f"inventory {path}: {other.name} and {name} share the address {address}"
                )
        hosts.append(LabHost(name=name, address=address))
    return LabInventory(path=path, hosts=tuple(hosts), bridge=bridge, gateway=gateway)


def _collect_groups(
    data: Mapping[object, object], path: Path
) -> dict[str, list[Mapping[str, object]]]:
    """Every group definition by name; Ansible allows a group to be defined in several places."""
    groups: dict[str, list[Mapping[str, object]]] = {}

    def visit(name: object, body: object) -> None:
        if body is None:
            body = {}
        if not isinstance(name, str) or not isinstance(body, Mapping):
            raise LabError(f"inventory {path}: group {name!r} must be a mapping")
        groups.setdefault(name, []).append(body)
        children = body.get("children") or {}
        if not isinstance(children, Mapping):
            raise LabError(f"inventory {path}: children of group {name!r} must be a mapping")
        for child_name, child_body in children.items():
            visit(child_name, child_body)

    for name, body in data.items():
        visit(name, body)
    return groups


def _hosts_of(
    group: str, groups: Mapping[str, list[Mapping[str, object]]], path: Path, seen: set[str]
) -> Iterator[str]:
    if group in seen:
        return
    seen.add(group)
    for body in groups.get(group, []):
        hosts = body.get("hosts") or {}
        if not isinstance(hosts, Mapping):
            raise LabError(f"inventory {path}: hosts of group {group!r} must be a mapping")
        for name in hosts:
            if not isinstance(name, str):
                raise LabError(f"inventory {path}: host name {name!r} in {group!r} is not a string")
            yield name
        children = body.get("children") or {}
        if isinstance(children, Mapping):
            for child in children:
                yield from _hosts_of(str(child), groups, path, seen)


def _host_address(
    name: str, groups: Mapping[str, list[Mapping[str, object]]], path: Path
) -> IPv4Address:
    values: list[object] = []
    for bodies in groups.values():
        for body in bodies:
            hosts = body.get("hosts") or {}
            if isinstance(hosts, Mapping) and name in hosts:
                host_vars = hosts[name] or {}
                if not isinstance(host_vars, Mapping):
                    raise LabError(f"inventory {path}: variables of host {name} must be a mapping")
                if "ansible_host" in host_vars:
                    values.append(host_vars["ansible_host"])
    if not values:
        raise LabError(f"inventory {path}: host {name} has no ansible_host address")
    if len(set(map(str, values))) > 1:
        raise LabError(f"inventory {path}: host {name} has different ansible_host values")
    try:
        return IPv4Address(str(values[0]))
    except AddressValueError as exc:
        raise LabError(
            f"inventory {path}: ansible_host of {name} must be a literal IPv4 address,"
            f" not {values[0]!r}"
        ) from exc


def _lab_settings(data: Mapping[object, object], path: Path) -> tuple[str, IPv4Interface]:
    all_group = data.get("all") or {}
    all_vars = all_group.get("vars") if isinstance(all_group, Mapping) else None
    all_vars = all_vars or {}
    if not isinstance(all_vars, Mapping):
        raise LabError(f"inventory {path}: all.vars must be a mapping")
    bridge = str(all_vars.get("lab_bridge", DEFAULT_BRIDGE))
    if not _IFNAME.match(bridge):
        raise LabError(f"inventory {path}: lab_bridge {bridge!r} is not a valid interface name")
    raw_gateway = str(all_vars.get("lab_gateway", DEFAULT_GATEWAY))
    try:
        gateway = IPv4Interface(raw_gateway)
    except ValueError as exc:
        raise LabError(
            f"inventory {path}: lab_gateway {raw_gateway!r} must look like 192.168.77.1/24"
        ) from exc
    if gateway.network.prefixlen > 30 or gateway.ip in (
        gateway.network.network_address,
        gateway.network.broadcast_address,
    ):
        raise LabError(f"inventory {path}: lab_gateway {raw_gateway} is not a usable host address")
    return bridge, gateway
