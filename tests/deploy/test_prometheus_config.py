"""The prometheus role's scrape config and alert rules, rendered from the inventory on the
controller and checked by Prometheus's own promtool: `check config`, `check rules`, and the
rules' unit tests (roles/prometheus/files/hazelog-rules.test.yml, `promtool test rules`).

No hosts needed: Ansible renders the role's templates for the monitoring host with a local
connection. promtool comes unpacked from Debian's package (`make promtool`), never installed.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.deploy.render import render as render_role
from tests.deploy.render import repo_inventory, role_play

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "roles/prometheus"
PROMTOOL = Path(os.environ.get("PROMTOOL", REPO / ".cache/tools/promtool"))
# The byte bound the rules' unit tests assume for LogNearFull.
TEST_CAPACITY = 1_000_000

RENDER_PLAY = role_play(
    ROLE,
    "Render the Prometheus config and rules",
    "monitoring",
    [
        {
            "name": "Render the rules as the role does",
            "ansible.builtin.template": {
                "src": str(ROLE / "templates/hazelog-rules.yml.j2"),
                "dest": "{{ out }}/hazelog-rules.yml",
                "mode": "0644",
                "variable_start_string": "[[",
                "variable_end_string": "]]",
            },
        },
        {
            "name": "Render the config",
            "ansible.builtin.template": {
                "src": str(ROLE / "templates/prometheus.yml.j2"),
                "dest": "{{ out }}/prometheus.yml",
                "mode": "0644",
            },
        },
    ],
)


def promtool() -> Path:
    found = PROMTOOL if PROMTOOL.is_file() else None
    if found is None and shutil.which("promtool"):
        found = Path(str(shutil.which("promtool")))
    require(found is not None, f"promtool is missing ({PROMTOOL}: make promtool)")
    assert found is not None
    return found


def render(
    out: Path, inventory: dict[str, Any], **extra_vars: Any
) -> subprocess.CompletedProcess[str]:
    tool = str(promtool())
    return render_role(
        out,
        RENDER_PLAY,
        inventory,
        # The preflight looks for the server's binaries; here promtool stands in for both.
        prometheus_binary=tool,
        prometheus_promtool=tool,
        # The config names the rules by absolute path: these, not the host's /etc/prometheus.
        prometheus_rules_file=str(out / "hazelog-rules.yml"),
        **extra_vars,
    )


def rendered(out: Path, inventory: dict[str, Any], **extra_vars: Any) -> dict[str, Any]:
    result = render(out, inventory, **extra_vars)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    config: dict[str, Any] = yaml.safe_load((out / "prometheus.yml").read_text(encoding="utf-8"))
    rules: dict[str, Any] = yaml.safe_load((out / "hazelog-rules.yml").read_text(encoding="utf-8"))
    return {"config": config, "rules": rules}


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def targets(config: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """job -> target -> its labels."""
    return {
        job["job_name"]: {
            target: static.get("labels", {})
            for static in job["static_configs"]
            for target in static["targets"]
        }
        for job in config["scrape_configs"]
    }


def alerts(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


def expected_targets(inventory: dict[str, Any]) -> dict[str, dict[str, dict[str, str]]]:
    """What the scrape config must list, counted from the inventory itself."""
    groups = inventory["all"]["children"]

    def address(group: str, name: str) -> str:
        return str(groups[group]["hosts"][name]["ansible_host"])

    hosts = {
        name: str(host["ansible_host"])
        for group in groups.values()
        for name, host in group["hosts"].items()
    }
    logging = groups["logging"]["hosts"]
    return {
        "facade": {f"{address('facade', n)}:8080": {"host": n} for n in groups["facade"]["hosts"]},
        "messages": {
            f"{address('messages', n)}:8081": {"host": n} for n in groups["messages"]["hosts"]
        },
        "logging": {
            f"{host['ansible_host']}:{port}": {"host": name, "logging_port": str(port)}
            for name, host in logging.items()
            for port in host["logging_ports"]
        },
        "hazelcast": {
            f"{host['ansible_host']}:{port + 2000}": {"host": name, "logging_port": str(port)}
            for name, host in logging.items()
            for port in host["logging_ports"]
        },
        "node": {f"{address_}:9100": {"host": name} for name, address_ in hosts.items()},
    }


@pytest.fixture(scope="module")
def repo_render(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("prometheus")
    return {"out": out, **rendered(out, repo_inventory())}


def test_every_inventory_target_is_scraped(repo_render: dict[str, Any]) -> None:
    assert targets(repo_render["config"]) == expected_targets(repo_inventory())
    assert repo_render["config"]["global"]["scrape_interval"] == "5s"
    assert repo_render["config"]["rule_files"] == [str(repo_render["out"] / "hazelog-rules.yml")]


def test_promtool_accepts_the_rules_and_the_config(repo_render: dict[str, Any]) -> None:
    out: Path = repo_render["out"]
    rules = run_promtool("check", "rules", "hazelog-rules.yml", cwd=out)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = run_promtool("check", "config", "prometheus.yml", cwd=out)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_alert_rules_pass_their_unit_tests(tmp_path: Path) -> None:
    rendered(tmp_path, repo_inventory(), prometheus_log_capacity_bytes=TEST_CAPACITY)
    shutil.copy(ROLE / "files/hazelog-rules.test.yml", tmp_path)
    result = run_promtool("test", "rules", "hazelog-rules.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_member_count_follows_the_inventory(
    repo_render: dict[str, Any], tmp_path: Path
) -> None:
    logging_hosts = repo_inventory()["all"]["children"]["logging"]["hosts"].values()
    members = sum(len(host["logging_ports"]) for host in logging_hosts)
    incomplete = alerts(repo_render["rules"])["HazelcastClusterIncomplete"]
    assert incomplete["expr"] == f"hazelcast_cluster_size < {members}"

    inventory = copy.deepcopy(repo_inventory())
    inventory["all"]["children"]["logging"]["hosts"]["logging1"]["logging_ports"] = [20000, 20010]
    grown = rendered(tmp_path, inventory)
    expr = alerts(grown["rules"])["HazelcastClusterIncomplete"]["expr"]
    assert expr == f"hazelcast_cluster_size < {members + 1}"
    assert targets(grown["config"]) == expected_targets(inventory)


def test_near_full_only_when_a_database_bounds_the_log(
    repo_render: dict[str, Any], tmp_path: Path
) -> None:
    database = "database" in repo_inventory()["all"]["children"]
    assert ("LogNearFull" in alerts(repo_render["rules"])) == database

    inventory = copy.deepcopy(repo_inventory())
    inventory["all"]["children"]["database"] = {"hosts": {"db": {"ansible_host": "192.168.56.12"}}}
    bounded = rendered(tmp_path, inventory)
    near_full = alerts(bounded["rules"])["LogNearFull"]
    # The hazelcast role's bound: 30 % of the default 256 MiB heap.
    assert "/ 80530636 > 0.8" in near_full["expr"]
    # The database host has a node exporter too.
    assert "192.168.56.12:9100" in targets(bounded["config"])["node"]


def test_an_inventory_without_members_fails_naming_the_group(tmp_path: Path) -> None:
    inventory = copy.deepcopy(repo_inventory())
    inventory["all"]["children"]["logging"]["hosts"] = {
        name: {k: v for k, v in host.items() if k != "logging_ports"}
        for name, host in inventory["all"]["children"]["logging"]["hosts"].items()
    }
    result = render(tmp_path, inventory)
    assert result.returncode != 0
    assert "logging_ports" in result.stdout
    assert not (tmp_path / "prometheus.yml").exists()
