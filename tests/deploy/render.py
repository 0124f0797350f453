"""Rendering a role's templates from an inventory on the controller, as the role would on each
host (connection local, nothing reached over SSH): the role's defaults and vars, its preflight
checks, then the given template tasks, which write under the extra variable `out`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.ansible import ansible_playbook
from tests.deploy.network import INVENTORY


def repo_inventory() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(INVENTORY.read_text(encoding="utf-8"))
    return loaded


def role_play(role: Path, name: str, hosts: str, templates: list[dict[str, Any]]) -> list[Any]:
    """A play that loads `role`'s defaults and vars, runs its preflight, then `templates`."""
    return [
        {
            "name": name,
            "hosts": hosts,
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Load the role's defaults and vars",
                    "ansible.builtin.include_vars": "{{ item }}",
                    "loop": [str(role / "defaults/main.yml"), str(role / "vars/main.yml")],
                },
                {
                    "name": "Run the role's checks",
                    "ansible.builtin.include_tasks": str(role / "tasks/preflight.yml"),
                },
                *templates,
            ],
        }
    ]


def render(
    out: Path, play: list[Any], inventory: dict[str, Any], **extra_vars: Any
) -> subprocess.CompletedProcess[str]:
    (out / "hosts.yml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    (out / "render.yml").write_text(yaml.safe_dump(play), encoding="utf-8")
    extra = {
        "out": str(out),
        # Every "host" is this controller: nothing is reached over SSH.
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        **extra_vars,
    }
    return ansible_playbook(
        "-i", str(out / "hosts.yml"), str(out / "render.yml"), "-e", json.dumps(extra), timeout=300
    )
