"""The firewall role's ruleset per host, rendered from the inventory on the controller.

No hosts needed: Ansible renders roles/firewall's template for every host (connection local),
`nft -c` checks each file, and the rules are read back. That the rules really let in and keep
out the right peers is tested on the deployed Vagrant hosts (test_reliability.py).
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.deploy.render import render as render_role
from tests.deploy.render import repo_inventory, role_play

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/firewall"

FACADE = "192.168.56.10"
LOGGING = ["192.168.56.21", "192.168.56.22", "192.168.56.23"]
MONITOR = "192.168.56.13"

RENDER_PLAY = role_play(
    ROLE,
    "Render the firewall ruleset of every host",
    "all",
    [
        {
            "name": "Render",
            "ansible.builtin.template": {
                "src": str(ROLE / "templates/nftables.conf.j2"),
                "dest": "{{ out }}/{{ inventory_hostname }}.nft",
                "mode": "0644",
            },
        }
    ],
)


def render(
    tmp_path: Path, inventory: dict[str, Any], **extra_vars: Any
) -> subprocess.CompletedProcess[str]:
    return render_role(tmp_path, RENDER_PLAY, inventory, **extra_vars)


@pytest.fixture(scope="module")
def rulesets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("firewall")
    result = render(out, repo_inventory())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {path.stem: path.read_text(encoding="utf-8") for path in out.glob("*.nft")}


def accepts(ruleset: str) -> dict[int, set[str] | None]:
    """TCP port -> the source addresses it accepts (None: from anyone)."""
    found: dict[int, set[str] | None] = {}
    pattern = re.compile(
        r"^\s*(?:ip6? saddr \{ (?P<sources>[^}]*) \} )?tcp dport \{ (?P<ports>[^}]*) \} accept$",
        re.MULTILINE,
    )
    for match in pattern.finditer(ruleset):
        sources = match["sources"]
        for port in (int(p) for p in match["ports"].split(",")):
            if sources is None:
                found[port] = None
            else:
                previous = found.get(port, set())
                assert previous is not None, f"port {port} is open to anyone and to some"
                found[port] = previous | {s.strip() for s in sources.split(",")}
    return found


def test_every_host_gets_a_ruleset(rulesets: dict[str, str]) -> None:
    assert set(rulesets) == {
        "facade",
        "messages",
        "db",
        "monitor",
        "logging1",
        "logging2",
        "logging3",
    }


def test_database_only_from_the_logging_hosts(rulesets: dict[str, str]) -> None:
    assert accepts(rulesets["db"]) == {22: None, 5432: set(LOGGING), 9100: {MONITOR}}


def test_rulesets_pass_nft_check(rulesets: dict[str, str], tmp_path: Path) -> None:
    nft = shutil.which("nft")
    require(nft is not None, "nft is missing (apt-get install nftables)")
    require(os.geteuid() == 0, "nft -c needs root (netlink)")
    assert nft is not None
    for host, ruleset in rulesets.items():
        path = tmp_path / f"{host}.nft"
        path.write_text(ruleset, encoding="utf-8")
        result = subprocess.run(
            [nft, "-c", "-f", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{host}: {result.stderr}"


def test_default_policy_drops_and_replies_pass(rulesets: dict[str, str]) -> None:
    for host, ruleset in rulesets.items():
        assert "policy drop;" in ruleset, host
        assert 'iif "lo" accept' in ruleset, host
        assert "ct state established,related accept" in ruleset, host


def test_facade_host_opens_the_facade_to_all(rulesets: dict[str, str]) -> None:
    assert accepts(rulesets["facade"]) == {22: None, 8080: None, 9100: {MONITOR}}


def test_messages_only_from_the_facade_and_monitoring(rulesets: dict[str, str]) -> None:
    assert accepts(rulesets["messages"]) == {22: None, 8081: {FACADE, MONITOR}, 9100: {MONITOR}}


def test_monitoring_host_rules(rulesets: dict[str, str]) -> None:
    # Prometheus's port is for the controller (read from SSH_CONNECTION on a real host) and the
    # admin sources: neither exists in this rendering, so it stays closed.
    assert accepts(rulesets["monitor"]) == {22: None, 9100: {MONITOR}}


@pytest.mark.parametrize(
    ("host", "port"), [("logging1", 20000), ("logging2", 20001), ("logging3", 20002)]
)
def test_logging_host_rules(rulesets: dict[str, str], host: str, port: int) -> None:
    assert accepts(rulesets[host]) == {
        22: None,
        port: {FACADE, MONITOR},
        port + 1000: set(LOGGING),
        port + 2000: {MONITOR},
        9100: {MONITOR},
    }


def test_several_ports_on_one_host(tmp_path: Path) -> None:
    inventory = copy.deepcopy(repo_inventory())
    inventory["all"]["children"]["logging"]["hosts"]["logging1"]["logging_ports"] = [20000, 20010]
    result = render(tmp_path, inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    rules = accepts((tmp_path / "logging1.nft").read_text(encoding="utf-8"))
    assert rules == {
        22: None,
        20000: {FACADE, MONITOR},
        20010: {FACADE, MONITOR},
        21000: set(LOGGING),
        21010: set(LOGGING),
        22000: {MONITOR},
        22010: {MONITOR},
        9100: {MONITOR},
    }


def test_prometheus_open_to_the_admin_sources(tmp_path: Path) -> None:
    result = render(tmp_path, repo_inventory(), firewall_admin_sources=["192.168.56.1"])
    assert result.returncode == 0, result.stdout[-3000:]
    rules = accepts((tmp_path / "monitor.nft").read_text(encoding="utf-8"))
    assert rules[9090] == {"192.168.56.1"}
    assert rules[9100] == {MONITOR}


def test_without_monitoring_hosts_no_metrics_port_opens(tmp_path: Path) -> None:
    inventory = copy.deepcopy(repo_inventory())
    del inventory["all"]["children"]["monitoring"]
    result = render(tmp_path, inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    rules = accepts((tmp_path / "logging1.nft").read_text(encoding="utf-8"))
    assert rules == {22: None, 20000: {FACADE}, 21000: set(LOGGING)}


def test_a_host_name_instead_of_an_address_fails_naming_the_variable(tmp_path: Path) -> None:
    inventory = copy.deepcopy(repo_inventory())
    inventory["all"]["children"]["facade"]["hosts"]["facade"]["ansible_host"] = "facade.example"
    result = render(tmp_path, inventory)
    assert result.returncode != 0
    assert "firewall_facade_sources" in result.stdout
    assert not list(tmp_path.glob("*.nft")), "no host may get a ruleset after a failed check"
