"""Losses the cluster and the facade absorb: two members SIGKILLed at once (backup-count 2),
and POSTs while a logging instance is down."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.support import Topology, get_lines, post_message

pytestmark = pytest.mark.integration

# Bounds for waiting on recovery; the tests assert on content, never on how long it took.
RECOVERY_WAIT = 60.0
MAX_POSTS = 200


def test_two_members_sigkilled_at_once_lose_nothing(topology: Topology) -> None:
    messages = [f"kill-{i}" for i in range(1, 11)]
    for message in messages:
        status, body = post_message(topology, message)
        assert status == 201, body

    topology.kill(*topology.member_names[:2])

    # The cluster needs a moment to notice and promote backups; a 503 meanwhile is allowed,
    # a 200 with anything but every message is not.
    deadline = time.monotonic() + RECOVERY_WAIT
    while True:
        status, lines = get_lines(topology)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, lines
    assert lines[:-1] == messages
    assert lines[-1] == "not implemented yet"


def test_post_while_a_logging_instance_is_down_fails_over(topology: Topology) -> None:
    dead = topology.logging_names[0]
    dead_url = f"http://127.0.0.1:{topology.ports.logging[0]}"
    assert topology.stop(dead)

    # POST until the facade has picked the dead instance at least once (its log says so);
    # every POST, that one included, must succeed.
    accepted = []
    for i in range(1, MAX_POSTS + 1):
        status, body = post_message(topology, f"failover-{i}")
        assert status == 201, (i, status, body)
        accepted.append(json.loads(body)["uuid"])
        if f"logging instance {dead_url}" in topology.log("facade"):
            break
    else:
        pytest.fail(f"the facade never tried {dead} in {MAX_POSTS} POSTs")

    assert not topology.received(dead)
    stored = {
        **topology.received(topology.logging_names[1]),
        **topology.received(topology.logging_names[2]),
    }
    assert set(accepted) <= set(stored)
    status, lines = get_lines(topology)
    assert status == 200
    assert lines[:-1] == [f"failover-{i}" for i in range(1, len(accepted) + 1)]
