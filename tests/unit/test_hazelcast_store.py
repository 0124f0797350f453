"""HazelcastStore's own logic (encoding, conflicts, connection state) over a fake map;
the real client against real members is covered by the integration tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hazelcast.core import HazelcastJsonValue
from hazelcast.lifecycle import LifecycleState

from hazelog.logging_service.store import (
    HazelcastStore,
    StoredMessage,
    message_json,
    sort_messages_json,
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
    await store.put_if_absent(StoredMessage("good", "ok", 2))
    texts = sort_messages_json(await store.all_json())
    assert [json.loads(text) for text in texts] == [{"uuid": "good", "msg": "ok", "accepted_at": 2}]


def test_sorting_orders_by_accept_time_then_uuid_across_digit_counts() -> None:
    messages = [
        StoredMessage("b", "late", 10**18),
        StoredMessage("c", "tie, larger uuid", 9),
        StoredMessage("a", 'needs "escaping"\n,"uuid":"z"', 9),
        StoredMessage("d", "first", 0),
    ]
    texts = sort_messages_json([message_json(m) for m in messages])
    assert [json.loads(text)["uuid"] for text in texts] == ["d", "a", "c", "b"]
    assert json.loads("[" + ",".join(texts) + "]")[1]["msg"] == messages[2].msg


def test_values_in_another_layout_are_parsed_and_rewritten_in_ours() -> None:
    foreign = json.dumps({"msg": "ünïcode", "uuid": "x", "accepted_at": 5}, indent=1)
    ours = message_json(StoredMessage("y", "m", 4))
    missing_uuid = '{"msg": "old layout", "accepted_at": 1}'
    texts = sort_messages_json([foreign, missing_uuid, ours, '{"accepted_at":x}'])
    assert texts == [ours, message_json(StoredMessage("x", "ünïcode", 5))]


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
