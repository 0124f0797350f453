"""Every systemd unit the roles install, scored by `systemd-analyze security --offline=true`.

The units are rendered by Ansible's own template engine with the roles' defaults (no host
needed), then scored as files. Python services must reach exposure 2.5 or lower; the Hazelcast
member 4.5 or lower, since it must keep MemoryDenyWriteExecute off for Java's JIT.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import require
from tests.deploy.ansible import ansible_playbook
from tests.deploy.figures import report_figures

REPO = Path(__file__).resolve().parents[2]
UNIT_TEMPLATES = sorted(REPO.glob("roles/*/templates/*.service.j2"))
ROLE_VARS = sorted([*REPO.glob("roles/*/defaults/main.yml"), *REPO.glob("roles/*/vars/main.yml")])

# Highest exposure allowed, per unit template name.
PYTHON_LIMIT = 2.5
LIMITS = {"hazelcast@.service.j2": 4.5}
# Template units are scored as one instance (systemd-analyze wants a full unit name).
INSTANCE = "20000"

# A play on the controller alone: load every role's defaults and vars, render every unit.
RENDER_PLAY = [
    {
        "name": "Render the units with the roles' defaults",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {
            # Facts the defaults read from the inventory, as a logging host would have them.
            "ansible_host": "192.0.2.21",
            "logging_ports": [int(INSTANCE)],
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        },
        "tasks": [
            {
                "name": "Load the roles' defaults and vars",
                "ansible.builtin.include_vars": "{{ item }}",
                "loop": "{{ role_vars }}",
            },
            {
                "name": "Render each unit",
                "ansible.builtin.template": {
                    "src": "{{ item.src }}",
                    "dest": "{{ item.dest }}",
                    "mode": "0644",
                },
                "loop": "{{ units }}",
            },
        ],
    }
]

_SCORE = re.compile(r"Overall exposure level for (?P<unit>\S+): (?P<score>\d+(?:\.\d+)?)")


def unit_name(template: Path) -> str:
    return template.name.removesuffix(".j2").replace("@.", f"@{INSTANCE}.")


def limit_for(template: Path) -> float:
    return LIMITS.get(template.name, PYTHON_LIMIT)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """unit template name -> the rendered unit file."""
    out = tmp_path_factory.mktemp("units")
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump(RENDER_PLAY, sort_keys=False), encoding="utf-8")
    units = [{"src": str(t), "dest": str(out / unit_name(t))} for t in UNIT_TEMPLATES]
    extra = out / "vars.json"
    extra.write_text(
        json.dumps({"role_vars": [str(p) for p in ROLE_VARS], "units": units}), encoding="utf-8"
    )
    result = ansible_playbook("-i", "localhost,", str(playbook), "-e", f"@{extra}", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {t.name: out / unit_name(t) for t in UNIT_TEMPLATES}


@pytest.fixture(scope="module")
def scores(request: pytest.FixtureRequest) -> Iterator[dict[str, float]]:
    found: dict[str, float] = {}
    yield found
    if found:
        report_figures(request.config, "unit-exposure", dict(sorted(found.items())))


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    require(path is not None, "systemd-analyze is missing (apt-get install systemd)")
    assert path is not None
    return path


def test_every_role_unit_is_covered() -> None:
    # Guards the glob: an empty or partial list would make the scoring pass vacuously.
    names = {t.name for t in UNIT_TEMPLATES}
    expected = {"facade.service.j2", "messages.service.j2", "logging@.service.j2"}
    assert names >= expected | {"hazelcast@.service.j2"}


@pytest.mark.parametrize("template", UNIT_TEMPLATES, ids=lambda t: t.name)
def test_unit_exposure_is_within_its_limit(
    template: Path, rendered: dict[str, Path], scores: dict[str, float]
) -> None:
    unit = rendered[template.name]
    limit = limit_for(template)
    # --threshold counts tenths: exit status non-zero above limit * 10.
    result = subprocess.run(
        [
            systemd_analyze(),
            "security",
            "--offline=true",
            f"--threshold={round(limit * 10)}",
            "--no-pager",
            str(unit),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = _SCORE.search(result.stdout + result.stderr)
    assert match is not None, result.stdout + result.stderr
    score = float(match["score"])
    scores[unit.name] = score
    assert result.returncode == 0, f"{unit.name}: exposure {score} > {limit}\n{result.stdout}"
    assert score <= limit


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_each_service_runs_as_its_own_unprivileged_user(rendered: dict[str, Path]) -> None:
    users = {name: directives(unit).get("User", []) for name, unit in rendered.items()}
    assert all(len(user) == 1 for user in users.values()), users
    names = [user[0] for user in users.values()]
    assert not {"root", "0"} & set(names), users
    assert len(set(names)) == len(names), f"services share a user: {users}"


def test_java_keeps_writable_executable_memory(rendered: dict[str, Path]) -> None:
    member = directives(rendered["hazelcast@.service.j2"])
    assert member.get("MemoryDenyWriteExecute", ["no"])[-1] in {"no", "false", "0", "off"}
    for name, unit in rendered.items():
        if name != "hazelcast@.service.j2":
            assert directives(unit).get("MemoryDenyWriteExecute") == ["yes"], name
