"""site.yml's preflight stops a bad inventory before any host is touched, naming the variable.

Runs ansible-playbook on the controller only (the preflight play targets localhost)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require
from tests.deploy.ansible import ansible_playbook

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventory/vagrant/hosts.yml"

Edit = Callable[[dict[str, Any]], None]


def logging_host(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def get(inventory: dict[str, Any]) -> dict[str, Any]:
        host: dict[str, Any] = inventory["all"]["children"]["logging"]["hosts"][name]
        return host

    return get


def set_ports(name: str, value: object) -> Edit:
    return lambda inv: logging_host(name)(inv).__setitem__("logging_ports", value)


def drop_group(group: str) -> Edit:
    return lambda inv: inv["all"]["children"].pop(group)


def drop_ports(name: str) -> Edit:
    return lambda inv: logging_host(name)(inv).pop("logging_ports")


def member_port_collision(inv: dict[str, Any]) -> None:
    # logging2 moves onto logging1's address with the port logging1's member listens on.
    logging_host("logging2")(inv)["ansible_host"] = logging_host("logging1")(inv)["ansible_host"]
    logging_host("logging2")(inv)["logging_ports"] = [21000]


def run_preflight(tmp_path: Path, edit: Edit | None) -> subprocess.CompletedProcess[str]:
    inventory = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    bad = copy.deepcopy(inventory)
    if edit is not None:
        edit(bad)
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    return ansible_playbook("-i", str(path), "playbooks/preflight.yml", timeout=120)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (drop_group("messages"), "Inventory group 'messages' is missing"),
        (set_ports("logging2", [65000]), "logging_ports of logging2 is [65000]"),
        (set_ports("logging2", [20001, 20001]), "logging_ports of logging2 is [20001, 20001]"),
        (set_ports("logging2", "20001"), 'logging_ports of logging2 is "20001"'),
        (set_ports("logging2", {"port": 20001}), "logging_ports of logging2 is {"),
        (drop_ports("logging3"), 'logging_ports of logging3 is "undefined"'),
        (member_port_collision, "192.168.56.21:21000"),
    ],
    ids=["missing-group", "out-of-range", "duplicate", "string", "mapping", "missing", "collision"],
)
def test_a_bad_inventory_stops_at_preflight_naming_the_variable(
    tmp_path: Path, edit: Edit, expected: str
) -> None:
    result = run_preflight(tmp_path, edit)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0
    assert expected in output, output[-2000:]


def test_the_repository_inventory_passes_preflight(tmp_path: Path) -> None:
    artifacts = REPO / ".cache/artifacts"
    require(
        (artifacts / "hazelcast-5.7.0.jar").exists()
        and (artifacts / "wheelhouse/requirements.txt").exists(),
        "no artifacts: run `make artifacts`",
    )
    result = run_preflight(tmp_path, None)
    assert result.returncode == 0, result.stdout[-2000:]


def test_the_vagrantfile_validates() -> None:
    vagrant = shutil.which("vagrant")
    require(vagrant is not None, "vagrant is not installed (apt-get install vagrant)")
    assert vagrant is not None
    result = subprocess.run(
        [vagrant, "validate", "--ignore-provider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("installed", [True, False])
def test_a_service_role_stops_when_the_hazelog_venv_is_missing(
    tmp_path: Path, installed: bool
) -> None:
    venv = tmp_path / "venv"
    if installed:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin/hazelog").write_text("#!/bin/sh\n", encoding="utf-8")
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "The common venv check, as the service roles' preflight runs it",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Check that the hazelog venv is installed",
                            "ansible.builtin.import_role": {
                                "name": "common",
                                "tasks_from": "hazelog_installed.yml",
                            },
                            "vars": {"common_hazelog_venv": str(venv)},
                        }
                    ],
                }
            ]
        ),
        encoding="utf-8",
    )
    # This controller's own Python: discovery may find a shim without the interpreter behind it.
    python = f"ansible_python_interpreter={sys.executable}"
    done = ansible_playbook("-i", "localhost,", "-e", python, str(playbook), timeout=120)
    output = done.stdout + done.stderr
    if installed:
        assert done.returncode == 0, output
    else:
        assert done.returncode != 0, output
        assert f"{venv}/bin/hazelog is missing on localhost" in output, output
        assert "the app play" in output, output
