"""Members started from the rendered template: one cluster, health REST only, bound to
member_host, usable by the Python client the logging service uses."""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest
from hazelcast.asyncio import HazelcastClient, Map

from hazelog_tools.member import health_url, http_ok, member_health
from tests.conftest import require
from tests.integration.support import HOST, Topology, members_of

pytestmark = pytest.mark.integration


def test_members_form_one_cluster(shared_topology: Topology) -> None:
    for port in shared_topology.ports.members:
        health = member_health(HOST, port)
        assert health is not None, f"member {port} does not answer /hazelcast/health"
        assert health["nodeState"] == "ACTIVE"
        assert health["clusterSize"] == len(shared_topology.ports.members)
        assert health["clusterSafe"] is True


def test_member_rest_serves_the_health_group_only(shared_topology: Topology) -> None:
    port = shared_topology.ports.members[0]
    assert http_ok(health_url(HOST, port, "ready"))
    assert http_ok(health_url(HOST, port, "cluster-safe"))
    # CLUSTER_READ and DATA stay disabled: the member closes such requests unanswered.
    assert not http_ok(f"http://{HOST}:{port}/hazelcast/rest/cluster")
    assert not http_ok(f"http://{HOST}:{port}/hazelcast/rest/maps/messages/any")


def test_member_listens_on_member_host_only(shared_topology: Topology) -> None:
    require(shutil.which("ss") is not None, "ss (iproute2) is not installed")
    for port in shared_topology.ports.members:
        listing = subprocess.run(
            ["ss", "-Hltn", f"sport = :{port}"], check=True, capture_output=True, text=True
        ).stdout
        addresses = [line.split()[3] for line in listing.splitlines() if line.strip()]
        assert addresses, f"nothing listens on {port}"
        # Java shows an IPv4 bind as [::ffff:127.0.0.1]:PORT; never *:PORT or 0.0.0.0:PORT.
        assert all(HOST in address for address in addresses), addresses


async def test_python_client_puts_and_gets(shared_topology: Topology) -> None:
    members = members_of(shared_topology)
    writer = await HazelcastClient.create_and_start(cluster_name="hazelog", cluster_members=members)
    # A second client that knows only the last member reads what the first one wrote.
    reader = await HazelcastClient.create_and_start(
        cluster_name="hazelog", cluster_members=members[-1:]
    )
    map_name = f"integration-probe-{uuid.uuid4()}"
    try:
        written: Map[str, str] = await writer.get_map(map_name)
        entries = {f"key-{i}": f"value-{i}" for i in range(50)}
        for key, value in entries.items():
            await written.put(key, value)
        read: Map[str, str] = await reader.get_map(map_name)
        assert await read.size() == len(entries)
        assert {key: await read.get(key) for key in entries} == entries
        await written.destroy()
    finally:
        await writer.shutdown()
        await reader.shutdown()
