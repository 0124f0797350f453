"""Paged reads, GET /?limit=N&after=CURSOR, on a logging instance (in-memory store) and
through the facade; and the whole log streamed one message per line."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from hazelog.logging_service.pages import Pager
from hazelog.logging_service.store import MAX_ACCEPTED_AT, StoredMessage
from hazelog.web.paging import MAX_LIMIT, Cursor
from tests.unit.servers import fetch, fetch_json
from tests.unit.test_facade import config, facade
from tests.unit.test_logging_service import FakeStore, logging_instance

JSON = {"Accept": "application/json"}
TEXT = {"Accept": "text/plain"}


def fill(store: FakeStore, stamps: list[int]) -> list[StoredMessage]:
    """Messages at these accept times (repeats are ties, broken by UUID), in log order."""
    messages = [StoredMessage(str(uuid.uuid4()), f"m{i}\nline", at) for i, at in enumerate(stamps)]
    for message in messages:
        store.data[message.uuid] = message
    return sorted(messages, key=StoredMessage.sort_key)


async def walk(url: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every page from the first; the messages and the number of requests."""
    seen: list[dict[str, Any]] = []
    query = f"?limit={limit}"
    requests = 0
    while True:
        status, headers, body = await fetch("GET", url + "/" + query, headers=JSON)
        requests += 1
        assert status == 200, body
        page = json.loads(body)
        assert len(page["messages"]) <= limit
        seen.extend(page["messages"])
        if page["next"] is None:
            assert "Link" not in headers
            return seen, requests
        assert (
            headers["Link"]
            == f'</?limit={limit}&after={page["next"].replace(":", "%3A")}>; rel="next"'
        )
        query = f"?limit={limit}&after={page['next']}"


STAMPS = [5, 1, 1, 1, 9, 2, 10**12, 10**12 + 1, 7, 7, 3, 10**15, 4, 8, 6, 6, 6]


async def test_walking_pages_yields_the_whole_log_in_order_once() -> None:
    store = FakeStore()
    expected = fill(store, STAMPS)
    async with logging_instance(store) as url:
        seen, requests = await walk(url, 4)
    assert [m["uuid"] for m in seen] == [m.uuid for m in expected]
    assert requests == len(STAMPS) // 4 + 1


async def test_the_facade_pages_in_json_and_text() -> None:
    store = FakeStore()
    expected = fill(store, STAMPS)
    async with logging_instance(store) as live, facade(config([live + "/"])) as url:
        seen, _ = await walk(url, 5)
        status, headers, body = await fetch(
            "GET", url + "/?limit=3", headers={"Accept": "text/plain"}
        )
    assert [m["uuid"] for m in seen] == [m.uuid for m in expected]
    assert status == 200
    assert body.decode() == "".join(m.msg.replace("\n", "\\n") + "\n" for m in expected[:3])
    assert 'rel="next"' in headers["Link"]


async def test_pages_reach_messages_stamped_far_apart_and_in_the_future() -> None:
    store = FakeStore()
    now = time.time_ns()
    expected = fill(store, [0, 1, now - 10**15, now, now + 10**9, MAX_ACCEPTED_AT])
    pager = Pager(store)
    seen: list[str] = []
    after: Cursor | None = None
    while True:
        page = await pager.page(after, 2)
        seen.extend(page.texts)
        if page.next is None:
            break
        after = page.next
    assert [text.split('"uuid":"')[1][:36] for text in seen] == [m.uuid for m in expected]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=", "invalid_limit"),
        ("after=", "invalid_cursor"),
        (f"limit={MAX_LIMIT + 1}", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("limit=-1", "invalid_limit"),
        ("limit=1&limit=2", "invalid_limit"),
        ("after=yesterday", "invalid_cursor"),
        ("after=12.not-a-uuid", "invalid_cursor"),
        (f"after=x.{uuid.uuid4()}", "invalid_cursor"),
    ],
)
async def test_bad_limit_or_cursor_is_a_json_400(query: str, error: str) -> None:
    async with logging_instance(FakeStore()) as live, facade(config([live + "/"])) as url:
        for base in (live, url):
            status, body = await fetch_json("GET", f"{base}/?{query}")
            assert (status, body["error"]) == (400, error), base


async def test_the_whole_log_streams_one_message_per_line() -> None:
    store = FakeStore()
    expected = fill(store, list(range(6000)))  # more than one internal page (5000)
    async with logging_instance(store) as live, facade(config([live + "/"])) as url:
        _, _, raw = await fetch("GET", live + "/")
        status, whole = await fetch_json("GET", url + "/", headers=JSON)
        _, _, text = await fetch("GET", url + "/")
    lines = raw.split(b"\n")
    assert lines[0] == b'{"messages":['
    assert lines[-1] == b"]}"
    assert len(lines) == len(expected) + 2
    assert status == 200
    assert [m["uuid"] for m in whole["messages"]] == [m.uuid for m in expected]
    assert whole["text"] is None
    assert whole["warnings"]
    assert text.decode().splitlines() == [m.msg.replace("\n", "\\n") for m in expected]


async def test_an_empty_log_streams_as_an_empty_list() -> None:
    async with logging_instance(FakeStore()) as live, facade(config([live + "/"])) as url:
        _, _, raw = await fetch("GET", live + "/")
        status, whole = await fetch_json("GET", url + "/", headers=JSON)
        text_status, _, text = await fetch("GET", url + "/")
    assert json.loads(raw) == {"messages": []}
    assert status == 200
    assert whole["messages"] == []
    assert text_status == 200
    assert text == b""
