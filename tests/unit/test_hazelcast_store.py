"""HazelcastStore's own logic (encoding, conflicts, connection state) over a fake map;
the real client against real members is covered by the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hazelcast.core import HazelcastJsonValue
from hazelcast.lifecycle import LifecycleState

from hazelog.logging_service.store import HazelcastStore, StoredMessage


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

    async def entry_set(self) -> list[tuple[str, Any]]:
        return list(self.entries.items())


def make() -> tuple[HazelcastStore, FakeClient, FakeMap]:
    client, messages = FakeClient(), FakeMap()
    return HazelcastStore(client, messages), client, messages  # type: ignore[arg-type]


async def test_put_stores_json_and_reports_the_previous_message() -> None:
    store, _, messages = make()
    message = StoredMessage("u1", "grüße", 7)
    assert await store.put_if_absent(message) is None
    value = messages.entries["u1"]
    assert isinstance(value, HazelcastJsonValue)
    assert value.loads() == {"msg": "grüße", "accepted_at": 7}
    assert await store.put_if_absent(StoredMessage("u1", "other", 9)) == message


async def test_unreadable_entries_count_as_taken_and_are_skipped_on_read() -> None:
    store, _, messages = make()
    messages.entries["bad"] = "not json"
    previous = await store.put_if_absent(StoredMessage("bad", "m", 1))
    assert previous is not None
    assert previous.msg != "m"
    messages.entries["good"] = HazelcastJsonValue('{"msg": "ok", "accepted_at": 2}')
    assert await store.all() == [StoredMessage("good", "ok", 2)]


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
