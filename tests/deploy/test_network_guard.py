"""Nothing leaves the machine: with the hosts' network not on a local link (no bridge, hosts not
up), the playbooks and the load generator refuse before sending a single packet.

Each test runs its command in a network namespace of its own whose only way out is a default
route over a veth link to a second namespace (the "gateway"): the situation of a machine whose
bridge is absent, with nothing outside this machine on the other end. The link counts what is
sent; it must stay at zero."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require
from tests.deploy.ansible import ANSIBLE_PLAYBOOK
from tests.deploy.network import NOT_UP

REPO = Path(__file__).resolve().parents[2]
FACADE_URL = "http://192.168.56.10:8080/"


def ip(*args: str, namespace: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    argv = [*prefix, "ip", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


def no_ipv6(namespace: str, interface: str) -> None:
    # Router solicitations and DAD would count as sent packets.
    subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-qw",
         f"net.ipv6.conf.{interface}.disable_ipv6=1"],
        check=True,
    )  # fmt: skip


@pytest.fixture
def no_bridge() -> Iterator[str]:
    """A namespace where 192.168.56.0/24 is routed out through a default gateway."""
    require(os.geteuid() == 0, "network namespaces need root")
    require(shutil.which("ip") is not None, "iproute2 is missing")
    name = f"hazelog-guard-{uuid.uuid4().hex[:8]}"
    gateway = f"{name}-gw"
    ip("netns", "add", name)
    ip("netns", "add", gateway)
    try:
        ip("link", "add", "out0", "type", "veth", "peer", "name", "in0", "netns", gateway,
           namespace=name)  # fmt: skip
        no_ipv6(name, "out0")
        no_ipv6(gateway, "in0")
        ip("addr", "add", "198.51.100.1/24", "dev", "in0", namespace=gateway)
        ip("link", "set", "in0", "up", namespace=gateway)
        ip("link", "set", "lo", "up", namespace=name)
        ip("addr", "add", "198.51.100.2/24", "dev", "out0", namespace=name)
        ip("link", "set", "out0", "up", namespace=name)
        ip("route", "add", "default", "via", "198.51.100.1", namespace=name)
        yield name
    finally:
        ip("netns", "delete", name)
        ip("netns", "delete", gateway)


def sent_packets(namespace: str) -> int:
    return int(
        ip("-s", "-j", "link", "show", "out0", namespace=namespace)
        .split('"tx":{', 1)[1]
        .split('"packets":', 1)[1]
        .split(",", 1)[0]
    )


def run_in(namespace: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )


def test_the_route_really_goes_out_there(no_bridge: str) -> None:
    # The premise of the other tests: without the guard, traffic would leave by out0.
    route = run_in(no_bridge, "ip", "route", "get", "192.168.56.10").stdout
    assert "via 198.51.100.1 dev out0" in route, route


@pytest.mark.parametrize("playbook", ["site.yml", "playbooks/scenario.yml"])
def test_playbooks_refuse_when_the_hosts_are_not_on_a_local_link(
    no_bridge: str, playbook: str
) -> None:
    require(ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing")
    before = sent_packets(no_bridge)
    result = run_in(no_bridge, str(ANSIBLE_PLAYBOOK), playbook)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-2000:]
    assert "The Vagrant hosts are not up: run `vagrant up`" in output, output[-2000:]
    assert sent_packets(no_bridge) == before


def test_the_load_generator_refuses_when_the_hosts_are_not_on_a_local_link(
    no_bridge: str,
) -> None:
    before = sent_packets(no_bridge)
    result = run_in(no_bridge, sys.executable, "-m", "tests.deploy.load", FACADE_URL)
    assert result.returncode == 2, result.stdout + result.stderr
    assert NOT_UP in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sent_packets(no_bridge) == before
