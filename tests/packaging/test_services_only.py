"""The split between what the hosts run and what stays on the controller: the wheelhouse
pushed to the hosts carries the services only, starting a service never imports the
controller's tools, and the tools still plug `hazelog local` into the dev venv's command."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from email.parser import Parser
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "src/hazelog"
TOOLS = REPO / "tools/src/hazelog_tools"
WHEELHOUSE = REPO / ".cache/artifacts/wheelhouse"
HAZELOG = Path(sys.executable).parent / "hazelog"


def runtime_requirements(lines: Iterable[str]) -> set[str]:
    """Names of the Requires-Dist entries that apply here without extras."""
    names: set[str] = set()
    for line in lines:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.add(canonicalize_name(requirement.name))
    return names


def closure(roots: Iterable[str], requires: dict[str, set[str]]) -> set[str]:
    """`roots` and everything they need, transitively, by the `requires` map."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(requires[name])
    return seen


def wheel_metadata(wheel: Path) -> tuple[str, set[str]]:
    with zipfile.ZipFile(wheel) as archive:
        path = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(path).decode())
    return canonicalize_name(metadata["Name"]), runtime_requirements(
        metadata.get_all("Requires-Dist") or []
    )


def installed_requires(names: Iterable[str]) -> dict[str, set[str]]:
    """Requires-Dist of the dev venv's distributions, for as far as `names` reach."""
    requires: dict[str, set[str]] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in requires:
            requires[name] = runtime_requirements(distribution(name).requires or [])
            todo.extend(requires[name])
    return requires


def third_party_imports(package: Path) -> set[str]:
    """Top-level names of the non-stdlib modules the package's code imports."""
    names: set[str] = set()
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names} - {package.name}


def modules_under(package: Path) -> set[str]:
    return {str(path.relative_to(package.parent)) for path in package.rglob("*.py")}


def require_wheelhouse() -> tuple[Path, dict[str, set[str]], set[str]]:
    """The hazelog wheel, each wheel's requirements by name, and requirements.txt's names."""
    require(
        (WHEELHOUSE / "requirements.txt").is_file(),
        f"no wheelhouse at {WHEELHOUSE} (run `make artifacts`)",
    )
    requires: dict[str, set[str]] = {}
    hazelog_wheel = None
    for wheel in WHEELHOUSE.glob("*.whl"):
        name, needs = wheel_metadata(wheel)
        requires[name] = needs
        if name == "hazelog":
            hazelog_wheel = wheel
    assert hazelog_wheel is not None, f"no hazelog wheel in {WHEELHOUSE}"
    pinned: set[str] = {
        canonicalize_name(line.split("==")[0])
        for line in (WHEELHOUSE / "requirements.txt").read_text().split()
    }
    return hazelog_wheel, requires, pinned


def test_the_hazelog_wheel_holds_the_services_modules_and_no_tool() -> None:
    hazelog_wheel, _, _ = require_wheelhouse()
    with zipfile.ZipFile(hazelog_wheel) as archive:
        packed = {n for n in archive.namelist() if ".dist-info/" not in n}
    # Each of the tools' modules and templates, as it would sit in the hazelog package.
    tool_files = {
        str(Path("hazelog") / path.relative_to(TOOLS))
        for path in TOOLS.rglob("*")
        if path.suffix in {".py", ".j2"} and path != TOOLS / "__init__.py"
    }
    assert {"hazelog/member.py", "hazelog/local/cli.py", "hazelog/bench/cli.py"} <= tool_files
    leaked = packed & tool_files
    assert leaked == set()
    assert not {n for n in packed if n.split("/")[0] != "hazelog"}
    assert not {n for n in packed if {"local", "bench", "lab", "templates"} & set(n.split("/"))}
    assert packed == modules_under(SERVICES)


def test_the_wheelhouse_pins_what_the_services_import_and_no_tools_dependency() -> None:
    _, requires, pinned = require_wheelhouse()
    by_module = packages_distributions()
    imported = {
        canonicalize_name(dist)
        for module in third_party_imports(SERVICES)
        for dist in by_module[module]
    }
    needed = closure(imported, requires)
    assert pinned == needed | {"hazelog"}
    # What only the tools bring: present in the dev venv, absent from the hosts' wheelhouse.
    tools = installed_requires(["hazelog-tools"])
    tools_only = set(tools) - needed - {"hazelog"}
    assert {"matplotlib", "jinja2"} <= tools_only
    assert not pinned & tools_only


PROBE = """
import contextlib, io, json, sys
from hazelog.cli import main
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    for args in (["--help"], ["facade", "--help"], ["logging", "--help"], ["messages", "--help"]):
        main(args, prog_name="hazelog", standalone_mode=False)
import hazelog.facade.app, hazelog.logging_service.app, hazelog.messages.app
print(json.dumps({"help": shown.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_the_services_commands_import_no_tool_even_where_the_tools_are_installed() -> None:
    require(importlib.util.find_spec("hazelog_tools") is not None, "hazelog-tools not installed")
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(probe.stdout)
    # The plugin is there to be listed, and listing it did not import it.
    assert "local" in seen["help"].split("Commands:")[1]
    loaded = {name.split(".")[0] for name in seen["modules"]}
    assert {"hazelog", "sanic", "hazelcast"} <= loaded
    leaked = loaded & {"hazelog_tools", "jinja2", "matplotlib"}
    assert leaked == set()


def test_hazelog_local_is_plugged_into_the_dev_venvs_command(tmp_path: Path) -> None:
    require(HAZELOG.is_file(), f"no hazelog console script next to {sys.executable}")
    helped = subprocess.run(
        [HAZELOG, "local", "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    assert {"up", "down", "status"} <= set(helped.stdout.split("Commands:")[1].split())
    # It runs, not only describes itself: nothing is recorded under a fresh base dir.
    status = subprocess.run(
        [HAZELOG, "local", "status", "--base-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (status.returncode, status.stdout.strip()) == (3, "hazelog local: not running")
