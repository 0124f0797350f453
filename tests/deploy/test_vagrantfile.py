"""`vagrant up` stops with a clear message, before any container starts, when the box is
missing or another interface holds the hosts' network.

Each test runs Vagrant in a copy of the project (Vagrantfile and inventory) of its own, so its
.vagrant state is apart from the repository's hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    require(shutil.which("vagrant") is not None, "vagrant is missing (make system-deps)")
    require(shutil.which("lxc-start") is not None, "vagrant-lxc/lxc are missing (make system-deps)")
    (tmp_path / "inventory/vagrant").mkdir(parents=True)
    shutil.copy(REPO / "Vagrantfile", tmp_path)
    shutil.copy(REPO / "inventory/vagrant/hosts.yml", tmp_path / "inventory/vagrant")
    return tmp_path


def vagrant_up(
    project: Path, *, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "vagrant", "up", "facade"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def created_nothing(project: Path) -> bool:
    return not (project / ".vagrant/machines/facade/lxc/id").exists()


def test_a_missing_box_says_to_run_make_box(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # An empty Vagrant home: no box added there.
    home = tmp_path_factory.mktemp("vagrant-home")
    result = vagrant_up(project, env={"VAGRANT_HOME": str(home)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "The box hazelog/bookworm is missing: run `make box`" in " ".join(output.split())
    assert "Downloading" not in output
    assert created_nothing(project)


@pytest.fixture
def network_taken() -> Iterator[str]:
    """A namespace where an interface `taken0` already holds an address of 192.168.56.0/24."""
    require(os.geteuid() == 0, "network namespaces need root")
    name = f"hazelog-taken-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for args in (
            ["link", "add", "taken0", "type", "veth", "peer", "name", "peer0"],
            ["addr", "add", "192.168.56.200/24", "dev", "taken0"],
            ["link", "set", "taken0", "up"],
        ):
            subprocess.run(["ip", "netns", "exec", name, "ip", *args], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_a_taken_network_is_named_before_any_container_starts(
    project: Path, network_taken: str
) -> None:
    result = vagrant_up(project, prefix=("ip", "netns", "exec", network_taken))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "192.168.56.0/24 is already on taken0" in output, output[-2000:]
    assert created_nothing(project)
