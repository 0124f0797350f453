"""Idempotency-Key against real members: a client's retry stores its message once, also when
the retry comes after a member and its logging instance were SIGKILLed. Copies are counted
by their text, so a second copy under another UUID would show."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from hazelog.facade.idempotency import HEADER
from tests.integration.support import Topology, http

pytestmark = pytest.mark.integration

# Bounds that only turn "never" into a failure; nothing is asserted about how long it took.
RECOVERY_WAIT = 60.0
MAX_RETRIES = 60


def post_with_key(topology: Topology, text: str, key: str) -> tuple[int, dict[str, str]]:
    headers = {"Content-Type": "text/plain", HEADER: key}
    status, body = http("POST", topology.facade_url, text.encode(), headers=headers)
    return status, json.loads(body)


def copies(topology: Topology, text: str) -> int:
    """How many stored messages have this text, read through the facade once it answers."""
    deadline = time.monotonic() + RECOVERY_WAIT
    while True:
        status, body = http("GET", topology.facade_url, headers={"Accept": "application/json"})
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body[:300]
    return sum(1 for m in json.loads(body)["messages"] if m["msg"] == text)


def receiver(topology: Topology, message_uuid: str) -> list[str]:
    """The logging instances whose log says they received this UUID."""
    return [name for name in topology.logging_names if message_uuid in topology.received(name)]


def test_a_key_sent_again_stores_once_also_after_a_member_and_its_instance_died(
    topology: Topology,
) -> None:
    text = f"pay order {uuid.uuid4()}"
    key = f"client-retry-{uuid.uuid4()}"

    status, first = post_with_key(topology, text, key)
    assert status == 201, first
    status, again = post_with_key(topology, text, key)
    assert (status, again) == (200, first)
    assert copies(topology, text) == 1

    # The instance that stored the message goes, with its member, at once.
    [stored_by, *_] = receiver(topology, first["uuid"])
    its_member = topology.member_names[topology.logging_names.index(stored_by)]
    topology.kill(stored_by, its_member)

    # Retried until both surviving instances have seen the key (the facade picks at random);
    # a 503 while the cluster takes over the dead member's partitions is allowed.
    survivors = [name for name in topology.logging_names if name != stored_by]
    answers = []
    for _ in range(MAX_RETRIES):
        status, body = post_with_key(topology, text, key)
        answers.append(status)
        if status == 503:
            time.sleep(0.5)
            continue
        assert (status, body) == (200, first)
        if set(survivors) <= set(receiver(topology, first["uuid"])):
            break
    else:
        pytest.fail(f"the retries never reached both {survivors}: {answers}")
    assert copies(topology, text) == 1

    # The same key with another text is refused, and stores nothing.
    status, body = post_with_key(topology, text + " (changed)", key)
    assert (status, body["error"]) == (422, "idempotency_key_reused")
    assert copies(topology, text + " (changed)") == 0
    assert copies(topology, text) == 1
