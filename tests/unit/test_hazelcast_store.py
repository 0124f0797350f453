"""HazelcastStore's own logic (encoding, conflicts, connection state) over a fake map;
the real client against real members is covered by the integration tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import uuid4

from hazelcast.core import HazelcastJsonValue
from hazelcast.lifecycle import LifecycleState

from hazelog.logging_service.store import (
    HazelcastStore,
    StoredMessage,
    message_json,
    stored_entry,
)


class FakeLifecycle:
    def __init__(self) -> None:
        self.running = True
        self.listeners: list[Callable[[str], None]] = []

    def is_running(self) -> bool:
        return self.running

    def add_listener(self, listener: Callable[[str], None]) -> str:
        self.listeners.append(listener)
        return "id"

    def fire(self, state: str) -> None:
        for listener in self.listeners:
            listener(state)


class FakeClient:
    def __init__(self) -> None:
        self.lifecycle_service = FakeLifecycle()
        self.shut_down = False

    async def shutdown(self) -> None:
        self.shut_down = True


class FakeMap:
    def __init__(self) -> None:
        self.entries: dict[str, Any] = {}

    async def put_if_absent(self, key: str, value: Any) -> Any:
        previous = self.entries.get(key)
        if previous is None:
            self.entries[key] = value
        return previous

    async def values(self) -> list[Any]:
        return list(self.entries.values())


def make() -> tuple[HazelcastStore, FakeClient, FakeMap]:
    client, messages = FakeClient(), FakeMap()
    return HazelcastStore(client, messages), client, messages  # type: ignore[arg-type]


async def test_put_stores_json_and_reports_the_previous_message() -> None:
    store, _, messages = make()
    message = StoredMessage("u1", "grüße", 7)
    assert await store.put_if_absent(message) is None
    value = messages.entries["u1"]
    assert isinstance(value, HazelcastJsonValue)
    assert value.loads() == {"uuid": "u1", "msg": "grüße", "accepted_at": 7}
    assert await store.put_if_absent(StoredMessage("u1", "other", 9)) == message


async def test_unreadable_entries_count_as_taken_and_are_skipped_on_read() -> None:
    store, _, messages = make()
    messages.entries["bad"] = "not json"
    previous = await store.put_if_absent(StoredMessage("bad", "m", 1))
    assert previous is not None
    assert previous.msg != "m"
    assert stored_entry("not json") is None


def test_our_layout_is_read_back_as_written() -> None:
    message = StoredMessage(str(uuid4()), 'needs "escaping"\n,"uuid":"z"', 9)
    text = message_json(message)
    assert stored_entry(text) == (9, message.uuid, text)
    assert json.loads(text)["msg"] == message.msg


def test_values_in_another_layout_are_parsed_and_rewritten_in_ours() -> None:
    foreign = json.dumps({"msg": "ünïcode", "uuid": "x", "accepted_at": 5}, indent=1)
    assert stored_entry(foreign) == (5, "x", message_json(StoredMessage("x", "ünïcode", 5)))
    assert stored_entry('{"msg": "old layout", "accepted_at": 1}') is None
    assert stored_entry('{"accepted_at":x}') is None


async def test_connection_state_follows_lifecycle_events() -> None:
    store, client, _ = make()
    assert store.problem() is None
    client.lifecycle_service.fire(LifecycleState.DISCONNECTED)
    assert store.problem() == "not connected to the hazelcast cluster"
    client.lifecycle_service.fire(LifecycleState.CONNECTED)
    assert store.problem() is None
    client.lifecycle_service.running = False
    assert store.problem() == "hazelcast client is not running"
    await store.close()
    assert client.shut_down
