"""Fixtures starting real Hazelcast members and real hazelog services on free ports."""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from hazelog_tools.local.processes import tail
from tests.conftest import require
from tests.integration import postgres as pg
from tests.integration.support import JAR, MAPSTORE_JARS, Topology, start_topology


@pytest.fixture(scope="session")
def java() -> str:
    path = shutil.which("java")
    require(path is not None, "java is not installed (make test installs a JRE)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def hazelcast_jar(java: str) -> Path:
    require(JAR.is_file(), f"{JAR} is missing (make artifacts fetches it)")
    return JAR


@pytest.fixture(scope="session")
def shared_topology(
    hazelcast_jar: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    """One topology for the tests that stop nothing; do not stop or kill its processes."""
    topology = start_topology(tmp_path_factory.mktemp("shared-topology"), hazelcast_jar)
    yield topology
    topology.stop_all()


@pytest.fixture
def topology(hazelcast_jar: Path, tmp_path: Path) -> Iterator[Topology]:
    """A topology of the test's own, to stop and kill parts of."""
    topology = start_topology(tmp_path / "topology", hazelcast_jar)
    yield topology
    topology.stop_all()


@pytest.fixture
def postgres() -> Iterator[pg.Postgres]:
    """A throwaway PostgreSQL server of the test's own (never the machine's cluster)."""
    require(pg.available(), f"PostgreSQL binaries not found in {pg.BIN} (make system-deps)")
    server = pg.start_postgres()
    yield server
    server.remove()


@pytest.fixture
def durable_topology(
    hazelcast_jar: Path, postgres: pg.Postgres, tmp_path: Path
) -> Iterator[Topology]:
    """A topology of the test's own whose members keep the map in `postgres`."""
    for jar in MAPSTORE_JARS:
        require(jar.is_file(), f"{jar} is missing (make artifacts builds and fetches it)")
    topology = start_topology(tmp_path / "topology", hazelcast_jar, database=postgres.database)
    yield topology
    topology.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, show the last lines of every process's log in the report."""
    report = yield
    if report.when == "call" and report.failed:
        funcargs = getattr(item, "funcargs", {})
        for fixture in ("topology", "shared_topology", "durable_topology"):
            topology = funcargs.get(fixture)
            if isinstance(topology, Topology):
                for name, spec in topology.specs.items():
                    report.sections.append((f"{fixture} log {name}", tail(spec.log_path, 15)))
    return report
