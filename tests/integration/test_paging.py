"""Paged reads over real members: walking every page through the facade while POSTs go on
yields the log in order, each message once, every message stored before the walk; once the
POSTs stop, a walk and the streamed whole-log GET both give exactly the whole log."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.support import Topology, http, post_message

pytestmark = pytest.mark.integration

BEFORE = 300
DURING = 200
LIMIT = 37


def post_many(topology: Topology, texts: list[str]) -> list[str]:
    def one(text: str) -> str:
        status, body = post_message(topology, text)
        assert status == 201, body
        uuid: str = json.loads(body)["uuid"]
        return uuid

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, texts))


def walk(topology: Topology) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    query = f"?limit={LIMIT}"
    while True:
        status, body = http(
            "GET", topology.facade_url + query, headers={"Accept": "application/json"}
        )
        assert status == 200, body
        page = json.loads(body)
        assert len(page["messages"]) <= LIMIT
        seen.extend(page["messages"])
        if page["next"] is None:
            return seen
        query = f"?limit={LIMIT}&after={page['next']}"


def in_log_order(messages: list[dict[str, Any]]) -> bool:
    keys = [(m["accepted_at"], m["uuid"]) for m in messages]
    return keys == sorted(keys) and len(set(keys)) == len(keys)


def test_walking_pages_while_posting_yields_the_log_once_in_order(topology: Topology) -> None:
    before = set(post_many(topology, [f"before {i}" for i in range(BEFORE)]))
    during: list[str] = []
    poster = threading.Thread(
        target=lambda: during.extend(post_many(topology, [f"during {i}" for i in range(DURING)]))
    )
    poster.start()
    try:
        walked = walk(topology)
    finally:
        poster.join()
    uuids = [m["uuid"] for m in walked]
    assert in_log_order(walked)
    assert before <= set(uuids), "a message stored before the walk is missing"
    assert set(uuids) <= before | set(during)

    everything = before | set(during)
    assert len(everything) == BEFORE + DURING
    walked_again = walk(topology)
    assert in_log_order(walked_again)
    assert {m["uuid"] for m in walked_again} == everything
    assert len(walked_again) == len(everything)
    status, body = http("GET", topology.facade_url, headers={"Accept": "application/json"})
    assert status == 200
    assert json.loads(body)["messages"] == walked_again
