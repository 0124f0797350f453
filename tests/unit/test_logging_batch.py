"""POST /batch on a logging instance (the facade's batches under load), over an in-memory
store: each message checked, stored and logged on its own, one result each, in order."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from hazelog.logging_service.app import MAX_BATCH
from hazelog.logging_service.store import StoredMessage
from tests.unit.servers import fetch_json
from tests.unit.test_logging_service import LOG_FULL, U1, U2, U3, FakeStore, logging_instance


async def post_batch(url: str, body: Any) -> tuple[int, Any]:
    return await fetch_json("POST", url + "/batch", json=body)


async def test_each_message_gets_its_own_result_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hazelog")
    store = FakeStore()
    store.data[U2] = StoredMessage(U2, "already", 1)
    store.data[U3] = StoredMessage(U3, "original", 1)
    messages = [
        {"uuid": U1, "msg": "new", "accepted_at": 5},
        {"uuid": U2, "msg": "already", "accepted_at": 1},
        {"uuid": U3, "msg": "changed", "accepted_at": 1},
        {"uuid": "not-a-uuid", "msg": "m"},
        "not an object",
    ]
    async with logging_instance(store) as url:
        status, body = await post_batch(url, {"messages": messages})
    assert status == 200
    results = body["results"]
    assert [r["status"] for r in results] == [201, 200, 409, 400, 400]
    assert results[0] == {"status": 201, "uuid": U1, "stored": True}
    assert results[1] == {"status": 200, "uuid": U2, "stored": False}
    assert (results[2]["uuid"], results[2]["error"]) == (U3, "uuid_conflict")
    assert (results[3]["uuid"], results[3]["error"]) == ("not-a-uuid", "invalid_uuid")
    assert (results[4]["uuid"], results[4]["error"]) == (None, "invalid_shape")
    assert store.data[U1] == StoredMessage(U1, "new", 5)
    assert store.data[U3].msg == "original"
    received = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("rec"))
    assert received == sorted(
        [f"received {U1}: new", f"received {U2}: already", f"received {U3}: changed"]
    )


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": "m"},
        {"messages": [{"uuid": U1, "msg": "m"}], "extra": 1},
        {"uuid": U1, "msg": "m"},
        {"messages": [0] * (MAX_BATCH + 1)},
    ],
)
async def test_a_malformed_batch_is_400_and_stores_nothing(body: Any) -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        status, answer = await post_batch(url, body)
    assert status == 400
    assert answer["error"] in {"invalid_shape", "batch_too_large"}
    assert store.data == {}


async def test_a_store_failure_fails_the_whole_batch_with_503() -> None:
    store = FakeStore()
    store.failing = True
    async with logging_instance(store) as url:
        status, answer = await post_batch(url, {"messages": [{"uuid": U1, "msg": "m"}]})
    assert (status, answer["error"]) == (503, "store_unavailable")


async def test_a_full_log_gives_each_message_its_507_and_keeps_the_batch_answer() -> None:
    store = FakeStore()
    store.failing_writes = LOG_FULL
    messages = [{"uuid": U1, "msg": "a"}, {"uuid": "nope", "msg": "b"}]
    async with logging_instance(store) as url:
        status, answer = await post_batch(url, {"messages": messages})
    assert status == 200
    full, invalid = answer["results"]
    assert (full["uuid"], full["status"], full["error"]) == (U1, 507, "log_full")
    assert (invalid["status"], invalid["error"]) == (400, "invalid_uuid")
    assert store.data == {}


async def test_a_repeated_batch_stores_nothing_twice() -> None:
    store = FakeStore()
    messages = [{"uuid": U1, "msg": "a", "accepted_at": 1}, {"uuid": U2, "msg": "b"}]
    async with logging_instance(store) as url:
        first = await post_batch(url, {"messages": messages})
        again = await post_batch(url, {"messages": messages})
    assert [r["status"] for r in first[1]["results"]] == [201, 201]
    assert [r["status"] for r in again[1]["results"]] == [200, 200]
    assert sorted(store.data) == sorted([U1, U2])
