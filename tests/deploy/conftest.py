"""The deployed lab every deploy test module shares: the hosts up (`vagrant up`) and site.yml
deployed onto them once per session (idempotent, so always run), unless HAZELOG_DEPLOYED says
it has just been (`make test`: molecule made the hosts, converged site.yml on them and proved
it idempotent). If the session had to create the hosts, it destroys them at the end, unless
HAZELOG_KEEP_HOSTS is set. A test that breaks something leaves the lab as it found it
(`restore`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import require
from tests.deploy.lab import (
    RECOVERY_TIMEOUT,
    Lab,
    hosts_up,
    machine_states,
    run_playbook,
    run_vagrant,
    wait_until,
    whole_and_safe,
)
from tests.deploy.network import REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `leaves_log_full` run last: the log they fill stays (a log keeps what it
    acknowledged), and every later test would read it whole."""
    items.sort(key=lambda item: item.get_closest_marker("leaves_log_full") is not None)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    artifacts = REPO / ".cache/artifacts"
    require(
        (artifacts / "hazelcast-5.7.0.jar").is_file()
        and (artifacts / "jmx_prometheus_javaagent-1.0.1.jar").is_file()
        and (artifacts / "wheelhouse/requirements.txt").is_file(),
        "the artifacts are missing (make artifacts)",
    )
    created = set(machine_states().values()) != {"running"}
    try:
        the_lab = hosts_up()
        if created or not os.environ.get("HAZELOG_DEPLOYED"):
            deploy = run_playbook("site.yml")
            assert deploy.returncode == 0, deploy.stdout[-5000:] + deploy.stderr[-3000:]
        wait_until(lambda: whole_and_safe(the_lab), RECOVERY_TIMEOUT, "the deployed cluster")
        yield the_lab
    finally:
        # Leave the hosts as they were found: a user's running hosts stay up.
        if created and not os.environ.get("HAZELOG_KEEP_HOSTS"):
            run_vagrant("destroy", "-f")
