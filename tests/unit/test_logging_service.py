"""The logging instance's HTTP layer over an in-memory store (real Hazelcast: integration)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hazelcast.errors import HazelcastError, OperationTimeoutError

from hazelog.config import LoggingConfig
from hazelog.logging_service.app import create_app
from hazelog.logging_service.store import (
    MessageStore,
    StoredMessage,
    client_settings,
    message_json,
)
from tests.unit.servers import fetch_json, serve_app, wait_until

U1 = "6f1c9d52-3b0a-4f7e-9a57-1c1f0f0e0001"
U2 = "6f1c9d52-3b0a-4f7e-9a57-1c1f0f0e0002"
U3 = "6f1c9d52-3b0a-4f7e-9a57-1c1f0f0e0003"


class FakeStore:
    def __init__(self) -> None:
        self.data: dict[str, StoredMessage] = {}
        self.connected = True
        self.failing = False
        self.failure = "invocation timed out"
        self.failing_writes: str | None = None
        self.closed = False

    def problem(self) -> str | None:
        return None if self.connected else "not connected to the hazelcast cluster"

    async def put_if_absent(self, message: StoredMessage) -> StoredMessage | None:
        if self.failing:
            raise OperationTimeoutError(self.failure)
        if self.failing_writes is not None:
            raise HazelcastError(self.failing_writes)
        previous = self.data.get(message.uuid)
        if previous is None:
            self.data[message.uuid] = message
        return previous

    async def all_json(self) -> list[str]:
        if self.failing:
            raise OperationTimeoutError(self.failure)
        return [message_json(message) for message in self.data.values()]

    async def size(self) -> int:
        if self.failing:
            raise OperationTimeoutError("invocation timed out")
        return len(self.data)

    async def range_json(self, low: int, high: int) -> list[str]:
        if self.failing:
            raise OperationTimeoutError("invocation timed out")
        return [message_json(m) for m in self.data.values() if low <= m.accepted_at <= high]

    async def first_accepted_at(self) -> int | None:
        if self.failing:
            raise OperationTimeoutError("invocation timed out")
        return min((m.accepted_at for m in self.data.values()), default=None)

    def members(self) -> list[str]:
        return [] if not self.connected else list(CONFIG.members)

    async def close(self) -> None:
        self.closed = True


CONFIG = LoggingConfig(port=20007, max_body_bytes=1024)


@contextlib.asynccontextmanager
async def logging_instance(
    store: FakeStore, gate: asyncio.Event | None = None
) -> AsyncIterator[str]:
    async def open_store(config: LoggingConfig) -> MessageStore:
        if gate is not None:
            await gate.wait()
        return store

    async with serve_app(create_app(CONFIG, open_store)) as url:
        if gate is None:
            await wait_until(lambda: ready(url))
        yield url


async def ready(url: str) -> bool:
    status, _ = await fetch_json("GET", url + "/ready")
    return status == 200


async def post(url: str, body: Any) -> tuple[int, Any]:
    return await fetch_json("POST", url + "/", json=body)


async def test_first_post_stores_repeat_is_200_and_stores_nothing_new() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        first = await post(url, {"uuid": U1, "msg": "msg1", "accepted_at": 10})
        again = await post(url, {"uuid": U1, "msg": "msg1", "accepted_at": 10})
    assert first == (201, {"uuid": U1, "stored": True})
    assert again == (200, {"uuid": U1, "stored": False})
    assert store.data == {U1: StoredMessage(U1, "msg1", 10)}


async def test_same_uuid_with_another_message_is_a_conflict() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        await post(url, {"uuid": U1, "msg": "msg1", "accepted_at": 10})
        status, body = await post(url, {"uuid": U1, "msg": "other", "accepted_at": 10})
    assert (status, body["error"]) == (409, "uuid_conflict")
    assert store.data[U1].msg == "msg1"


async def test_uuid_is_stored_in_canonical_form() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        status, body = await post(url, {"uuid": U1.upper(), "msg": "m", "accepted_at": 1})
    assert (status, body["uuid"]) == (201, U1)
    assert list(store.data) == [U1]


async def test_missing_accepted_at_is_stamped_on_arrival() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        await post(url, {"uuid": U1, "msg": "m"})
    assert store.data[U1].accepted_at > 0


async def test_get_sorts_by_accept_time_then_uuid() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        for uuid, msg, at in [(U3, "third", 5), (U2, "second", 3), (U1, "first", 3)]:
            assert (await post(url, {"uuid": uuid, "msg": msg, "accepted_at": at}))[0] == 201
        status, body = await fetch_json("GET", url + "/")
    assert status == 200
    assert body == {
        "messages": [
            {"uuid": U1, "msg": "first", "accepted_at": 3},
            {"uuid": U2, "msg": "second", "accepted_at": 3},
            {"uuid": U3, "msg": "third", "accepted_at": 5},
        ]
    }


async def test_each_received_message_is_logged_with_uuid_and_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hazelog")
    async with logging_instance(FakeStore()) as url:
        await post(url, {"uuid": U1, "msg": "hello", "accepted_at": 1})
    [record] = [r for r in caplog.records if r.getMessage().startswith("received ")]
    assert record.getMessage() == f"received {U1}: hello"
    assert record.__dict__["UUID"] == U1
    assert record.__dict__["PORT"] == 20007


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"uuid": "not-a-uuid", "msg": "m"}, "invalid_uuid"),
        ({"uuid": 5, "msg": "m"}, "invalid_uuid"),
        ({"msg": "m"}, "invalid_uuid"),
        ({"uuid": U1}, "invalid_shape"),
        ({"uuid": U1, "msg": ""}, "empty_message"),
        ({"uuid": U1, "msg": " \t"}, "empty_message"),
        ({"uuid": U1, "msg": ["m"]}, "invalid_shape"),
        ({"uuid": U1, "msg": "\ud800"}, "invalid_utf8"),
        ({"uuid": U1, "msg": "m", "accepted_at": "yesterday"}, "invalid_shape"),
        ({"uuid": U1, "msg": "m", "accepted_at": -1}, "invalid_shape"),
        ({"uuid": U1, "msg": "m", "accepted_at": True}, "invalid_shape"),
        ({"uuid": U1, "msg": "m", "accepted_at": 2**63}, "invalid_shape"),
        ({"uuid": U1, "msg": "m", "extra": 1}, "invalid_shape"),
        ([U1, "m"], "invalid_shape"),
        ("m", "invalid_shape"),
    ],
)
async def test_bad_json_is_400_and_stores_nothing(body: Any, error: str) -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        status, answer = await post(url, body)
    assert (status, answer["error"]) == (400, error)
    assert store.data == {}


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b'{"uuid": ', 400, "malformed_json"),
        (b"", 400, "malformed_json"),
        (b'{"uuid": "\xff"}', 400, "invalid_utf8"),
        (b'{"msg": "' + b"x" * 1100 + b'"}', 413, "payload_too_large"),
    ],
)
async def test_unreadable_body_is_rejected(data: bytes, status: int, error: str) -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        got, answer = await fetch_json("POST", url + "/", data=data)
    assert (got, answer["error"]) == (status, error)
    assert store.data == {}


@pytest.mark.parametrize(("method", "path", "status"), [("PUT", "/", 405), ("GET", "/x", 404)])
async def test_wrong_method_or_path(method: str, path: str, status: int) -> None:
    async with logging_instance(FakeStore()) as url:
        got, body = await fetch_json(method, url + path)
    assert got == status
    assert set(body) == {"error", "detail"}


async def test_not_ready_until_the_store_opens_then_ready() -> None:
    gate = asyncio.Event()
    store = FakeStore()
    async with logging_instance(store, gate) as url:
        assert await fetch_json("GET", url + "/health") == (200, {"status": "ok"})
        status, body = await fetch_json("GET", url + "/ready")
        assert (status, body["error"]) == (503, "not_ready")
        assert "not connected" in body["detail"]
        posted, answer = await post(url, {"uuid": U1, "msg": "m"})
        assert (posted, answer["error"]) == (503, "not_ready")
        gate.set()
        await wait_until(lambda: ready(url))
        assert (await post(url, {"uuid": U1, "msg": "m"}))[0] == 201
    assert store.closed


async def test_disconnected_store_makes_the_instance_unready_and_refuse() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        store.connected = False
        status, body = await fetch_json("GET", url + "/ready")
        assert (status, body["error"]) == (503, "not_ready")
        posted, answer = await post(url, {"uuid": U1, "msg": "m"})
        assert (posted, answer["error"]) == (503, "not_ready")
        got, _ = await fetch_json("GET", url + "/")
        assert got == 503
        store.connected = True
        assert await ready(url)
    assert store.data == {}


async def test_store_errors_become_503_json() -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        store.failing = True
        posted, answer = await post(url, {"uuid": U1, "msg": "m"})
        got, listed = await fetch_json("GET", url + "/")
    assert (posted, answer["error"]) == (503, "store_unavailable")
    assert (got, listed["error"]) == (503, "store_unavailable")


async def test_store_error_detail_is_the_first_line_without_the_members_stack_trace() -> None:
    store = FakeStore()
    store.failing = True
    store.failure = (
        "Exception from server: hazelog.mapstore.StoreUnavailableException: PostgreSQL"
        " unavailable: connection refused\n \tat hazelog.mapstore.X.run(X.java:1)\n\tat y"
    )
    async with logging_instance(store) as url:
        posted, answer = await post(url, {"uuid": U1, "msg": "m"})
    assert posted == 503
    assert answer["detail"] == (
        "could not store: Exception from server: hazelog.mapstore.StoreUnavailableException:"
        " PostgreSQL unavailable: connection refused"
    )


LOG_FULL = (
    "Exception from server: hazelog.mapstore.LogFullException: log_full: this member's entries"
    " would take 900 bytes, more than the 800 it may hold (max-entry-bytes)\n\tat x.y(Z.java:1)"
)


async def test_a_full_log_is_507_log_full_and_reads_keep_working() -> None:
    store = FakeStore()
    store.data[U2] = StoredMessage(U2, "kept", 1)
    async with logging_instance(store) as url:
        store.failing_writes = LOG_FULL
        posted, answer = await post(url, {"uuid": U1, "msg": "m"})
        got, listed = await fetch_json("GET", url + "/")
    assert (posted, answer["error"]) == (507, "log_full")
    assert answer["detail"].startswith("the log is full: ")
    assert "Z.java" not in answer["detail"]
    assert got == 200
    assert [m["uuid"] for m in listed["messages"]] == [U2]


async def test_opening_the_store_is_retried_after_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[int] = []
    store = FakeStore()

    async def flaky_open(config: LoggingConfig) -> MessageStore:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("members not up yet")
        return store

    monkeypatch.setattr("hazelog.logging_service.app.RECONNECT_PAUSE", 0.01)
    async with serve_app(create_app(CONFIG, flaky_open)) as url:
        await wait_until(lambda: ready(url))
    assert len(attempts) == 2


def test_client_settings_keep_retrying_through_member_loss() -> None:
    config = LoggingConfig(
        cluster_name="lab", members=["10.0.0.2:21001", "10.0.0.1:21000"], port=20001
    )
    settings = client_settings(config)
    assert settings["cluster_name"] == "lab"
    assert settings["cluster_members"] == ["10.0.0.2:21001", "10.0.0.1:21000"]
    assert settings["redo_operation"] is True
    assert settings["cluster_connect_timeout"] == -1
    assert settings["invocation_timeout"] >= 10


def test_client_settings_are_accepted_by_the_hazelcast_client() -> None:
    from hazelcast.config import Config

    config = Config.from_dict(client_settings(LoggingConfig()))
    assert config.redo_operation is True
    assert config.cluster_members == ["127.0.0.1:21000"]
