"""The lab-3 task list, at process level: ten messages through the facade, who received
what, reading them back, and losing logging instances with their members one by one."""

from __future__ import annotations

import json
import time

import pytest

from hazelog_tools.member import member_health
from tests.integration.support import HOST, Topology, get_lines, post_message

pytestmark = pytest.mark.integration

MESSAGES = [f"msg{i}" for i in range(1, 11)]
MESSAGES_TEXT = "not implemented yet"
# Bound for the survivors to drop a stopped member (about 1 s here); not a timing assertion.
SETTLE_WAIT = 30.0


def post_all(topology: Topology, messages: list[str]) -> dict[str, str]:
    """POST each message; uuid -> message from the facade's answers."""
    accepted = {}
    for message in messages:
        status, body = post_message(topology, message)
        assert status == 201, (message, status, body)
        accepted[json.loads(body)["uuid"]] = message
    return accepted


def assert_reads_all(topology: Topology) -> None:
    status, lines = get_lines(topology)
    assert status == 200, lines
    assert lines == [*MESSAGES, MESSAGES_TEXT]


def stop_instance_with_member(topology: Topology, index: int) -> None:
    """What `systemctl stop logging@PORT` does: the logging instance, then its member."""
    logging_name = topology.logging_names[index]
    member_name = topology.member_names[index]
    master = topology.master_port()
    assert topology.stop(logging_name), f"{logging_name} needed SIGKILL"
    assert topology.stop(member_name), f"{member_name} did not shut down gracefully in time"
    assert not topology.alive(logging_name)
    assert not topology.alive(member_name)
    # The master handled a graceful shutdown request (partitions handed over first), which a
    # crash or the default TERMINATE policy would not send.
    port = topology.ports.members[index]
    assert f"Shutdown request of Member [{HOST}]:{port}" in topology.log(f"member-{master}")


def cluster_size_settles(member_port: int, size: int) -> bool:
    """True once the member sees `size` members: it drops a member that shut down gracefully
    after that member's connection is gone, a moment after the process exited."""
    deadline = time.monotonic() + SETTLE_WAIT
    while time.monotonic() < deadline:
        health = member_health(HOST, member_port)
        if health is not None and health["clusterSize"] == size:
            return True
        time.sleep(0.2)
    return False


def test_lab3_task_list(topology: Topology) -> None:
    accepted = post_all(topology, MESSAGES)

    # Each logging instance's log names the messages it received; together, all ten.
    received = {name: topology.received(name) for name in topology.logging_names}
    union = {uuid: msg for per_instance in received.values() for uuid, msg in per_instance.items()}
    assert union == accepted, received

    assert_reads_all(topology)

    # Stop the two members that are not the master, so the master's log can show that each
    # one asked for a graceful shutdown (a member's own last words are lost: Java's logging
    # shuts down with it).
    master_index = topology.ports.members.index(topology.master_port())
    first, second = (i for i in range(3) if i != master_index)

    stop_instance_with_member(topology, first)
    assert cluster_size_settles(topology.ports.members[master_index], 2)
    assert_reads_all(topology)

    stop_instance_with_member(topology, second)
    assert cluster_size_settles(topology.ports.members[master_index], 1)
    assert_reads_all(topology)
