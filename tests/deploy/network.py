"""Where test traffic may go: loopback, or the Vagrant hosts' network while it is on a link of
this machine. Without the bridge (hosts not up) the hosts' private addresses are routed out
through the default gateway, so every sender checks here first and refuses instead."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory/vagrant/hosts.yml"
NOT_UP = "the Vagrant hosts are not up: run `vagrant up`"


class TargetNotAllowed(ValueError):
    pass


def hosts_network(inventory: Path = INVENTORY) -> ipaddress.IPv4Network:
    data = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    return ipaddress.IPv4Network(data["all"]["vars"]["vagrant_network"])


def route_to(address: str) -> dict[str, object]:
    """The kernel's route from this machine to `address` (`ip -j route get`)."""
    result = subprocess.run(
        ["ip", "-j", "route", "get", address], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {}
    routes: list[dict[str, object]] = json.loads(result.stdout)
    return routes[0] if routes else {}


def check_address(address: str) -> None:
    """Raise TargetNotAllowed unless `address` is loopback, or a host of the Vagrant network
    reached over a local link (no gateway)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise TargetNotAllowed(
            f"{address}: give an IP address (loopback or a Vagrant host's)"
        ) from exc
    if ip.is_loopback:
        return
    network = hosts_network()
    if ip not in network:
        raise TargetNotAllowed(f"{address}: only loopback and the hosts' {network} may be sent to")
    route = route_to(address)
    if "gateway" in route or route.get("dev") in (None, "lo"):
        how = f"via {route['gateway']}" if "gateway" in route else "nowhere local"
        raise TargetNotAllowed(f"{NOT_UP} ({address} is routed {how}; nothing was sent)")
