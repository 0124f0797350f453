"""Safe to operate (issue 12), the facade and a logging instance against fakes: no 5xx from
input or from the facade's own machinery, /ready that means "can serve", GET going round
again, back-pressure, and Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from hazelog.config import FacadeConfig
from hazelog.facade.app import create_app
from hazelog.facade.batching import Batcher, BatcherError, BatchMismatch
from hazelog.facade.idempotency import HEADER, NAMESPACE, message_uuid, parse_key
from hazelog.facade.plain_text import escape_line
from hazelog.logging_service.store import StoredMessage
from hazelog.web.errors import ApiError
from tests.unit.servers import (
    FakeBackend,
    dead_url,
    fake_backend,
    fetch,
    fetch_json,
    serve_app,
    wait_until,
)
from tests.unit.test_facade import (
    ConfiguredOrder,
    FrozenClock,
    config,
    facade,
    messages_text,
    store_ok,
)
from tests.unit.test_logging_service import U1, FakeStore, logging_instance

JSON_TYPE = {"Content-Type": "application/json"}


# --- item 7: bodies however nested or large are a JSON 4xx ------------------------------

NESTED_OR_HUGE = [
    pytest.param(b"[" * 50_000, "too_deeply_nested", id="deep-array"),
    pytest.param(b'{"msg": ' + b'{"a": ' * 5_000, "too_deeply_nested", id="deep-object"),
    pytest.param(b'{"msg": ' + b"[" * 3_000 + b"]" * 3_000 + b"}", "too_deeply_nested", id="deep"),
    pytest.param(b'{"msg": ' + b"7" * 5_000 + b"}", "malformed_json", id="5000-digit-int"),
]


@pytest.mark.parametrize(("body", "error"), NESTED_OR_HUGE)
async def test_facade_answers_nested_or_huge_json_with_a_json_400(body: bytes, error: str) -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        status, answer = await fetch_json("POST", url + "/", data=body, headers=JSON_TYPE)
    assert (status, answer["error"]) == (400, error)
    assert answer["detail"]
    assert one.received == []


# Within the test instance's 1 KiB body limit: 1,000 levels are past the parser's stack.
NESTED_SMALL = [b"[" * 1_000, b'{"msg": ' + b"[" * 1_000, b'{"messages": [' + b"[" * 995]


@pytest.mark.parametrize("body", NESTED_SMALL, ids=["array", "in-msg", "in-batch"])
@pytest.mark.parametrize("path", ["/", "/batch"])
async def test_logging_instance_answers_deeply_nested_json_with_a_json_400(
    body: bytes, path: str
) -> None:
    store = FakeStore()
    async with logging_instance(store) as url:
        status, answer = await fetch_json("POST", url + path, data=body, headers=JSON_TYPE)
    assert (status, answer["error"]) == (400, "too_deeply_nested")
    assert store.data == {}


class BrokenStore(FakeStore):
    """A store whose client fails with something that is no Hazelcast error."""

    async def put_if_absent(self, message: StoredMessage) -> StoredMessage | None:
        raise RuntimeError("client bug")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/", {"uuid": U1, "msg": "m"}),
        ("/batch", {"messages": [{"uuid": U1, "msg": "m"}]}),
    ],
)
async def test_a_store_error_of_any_kind_is_a_json_503(path: str, body: Any) -> None:
    async with logging_instance(BrokenStore()) as url:
        status, answer = await fetch_json("POST", url + path, json=body)
    assert (status, answer["error"]) == (503, "store_unavailable")


async def test_a_post_while_the_facade_stops_is_a_json_503() -> None:
    async with fake_backend(store_ok) as one:
        app = create_app(config([one.url]), clock=FrozenClock(), rng=ConfiguredOrder())
        async with serve_app(app) as url:
            await app.ctx.batcher.close()
            status, answer = await fetch_json("POST", url + "/", data=b"m")
    assert (status, answer["error"]) == (503, "unavailable")
    assert one.received == []


async def test_a_batch_answered_with_too_few_results_fails_as_a_batcher_error() -> None:
    async def send(payloads: list[str], seconds: float) -> list[str]:
        return payloads[1:]

    batcher: Batcher[str, str] = Batcher(send, max_in_flight=1, max_batch=10, max_size=100)
    with pytest.raises(BatcherError) as raised:
        await batcher.submit("a", 1.0)
    assert isinstance(raised.value, BatchMismatch)


WITH_LINE_BREAKS = [
    {"uuid": str(uuid.UUID(int=1)), "msg": "two\nlines", "accepted_at": 1},
    {"uuid": str(uuid.UUID(int=2)), "msg": "ends in CR\r", "accepted_at": 2},
    {"uuid": str(uuid.UUID(int=3)), "msg": "a \\n that is no newline", "accepted_at": 3},
    {"uuid": str(uuid.UUID(int=4)), "msg": "line\u2028separator", "accepted_at": 4},
]


def unescape_line(line: str) -> str:
    """The README's rule read back: \\\\, \\n, \\r and \\uXXXX."""
    return json.loads('"' + line.replace('"', '\\"') + '"')  # type: ignore[no-any-return]


async def test_text_get_is_one_line_per_message_whatever_it_contains() -> None:
    async def stored(request: web.Request) -> web.StreamResponse:
        return web.json_response({"messages": WITH_LINE_BREAKS})

    async with (
        fake_backend(stored) as one,
        fake_backend(messages_text) as msgs,
        facade(config([one.url], msgs.url)) as url,
    ):
        status, _, body = await fetch("GET", url + "/")
    assert status == 200
    lines = body.decode().splitlines()
    assert lines == [
        "two\\nlines",
        "ends in CR\\r",
        "a \\\\n that is no newline",
        "line\\u2028separator",
        "not implemented yet",
    ]
    assert [unescape_line(line) for line in lines[:-1]] == [m["msg"] for m in WITH_LINE_BREAKS]


def test_every_line_break_python_knows_is_escaped() -> None:
    breaks = "".join(chr(c) for c in range(0x3000) if len(f"a{chr(c)}b".splitlines()) > 1)
    assert len(escape_line(breaks).splitlines()) == 1


# --- item 8: /ready means "can serve"; GET goes round again ---------------------------------


async def ready_ok(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ready"})


async def test_ready_is_503_while_no_logging_instance_is_ready() -> None:
    asked: list[str] = []

    async def ready_not(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        return web.json_response({"error": "not_ready", "detail": "no cluster"}, status=503)

    async with (
        fake_backend(store_ok, ready=ready_not) as not_ready,
        facade(config([dead_url(), not_ready.url])) as url,
    ):

        async def instance_asked_twice() -> bool:
            return len(asked) >= 2

        await wait_until(instance_asked_twice)
        status, body = await fetch_json("GET", url + "/ready")
    assert (status, body["error"]) == (503, "not_ready")
    assert "none of the 2 logging instance(s) is ready" in body["detail"]


async def test_ready_is_200_once_one_logging_instance_is_ready() -> None:
    async with (
        fake_backend(store_ok, ready=ready_ok) as good,
        facade(config([dead_url(), good.url])) as url,
    ):

        async def is_ready() -> bool:
            return (await fetch_json("GET", url + "/ready"))[0] == 200

        await wait_until(is_ready)
        assert await fetch_json("GET", url + "/ready") == (200, {"status": "ready"})


async def test_get_goes_round_again_while_an_instance_is_alive_but_failing() -> None:
    answers = iter([503, 503, 200])

    async def recovering(request: web.Request) -> web.StreamResponse:
        status = next(answers, 200)
        if status != 200:
            return web.json_response({"error": "store_unavailable", "detail": "x"}, status=status)
        return await store_ok(request)

    async with (
        fake_backend(recovering) as one,
        facade(config([one.url, dead_url()])) as url,
    ):
        status, body = await fetch_json("GET", url + "/", headers={"Accept": "application/json"})
    assert status == 200, body
    assert [m["msg"] for m in body["messages"]] == ["msg1", "msg2"]
    assert len(one.received) == 3


# --- item 4: back-pressure ----------------------------------------------------------------


async def test_past_max_pending_a_post_is_503_with_retry_after_and_nothing_is_sent() -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return await store_ok(request)

    async with (
        fake_backend(held) as one,
        facade(config([one.url], max_pending=2, deadline=30.0, request_timeout=30.0)) as url,
    ):
        first = [asyncio.create_task(fetch_json("POST", url + "/", data=m)) for m in (b"a", b"b")]

        async def both_sent() -> bool:
            return len(one.posted) == 2

        await wait_until(both_sent)
        status, headers, body = await fetch("POST", url + "/", data=b"turned away")
        release.set()
        accepted = await asyncio.gather(*first)
        sent = [p["msg"] for p in one.posted]
    assert status == 503
    assert headers["Retry-After"] in {"1", "2", "3"}
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"] == "overloaded"
    assert [s for s, _ in accepted] == [201, 201]
    assert sorted(sent) == ["a", "b"]


@asynccontextmanager
async def full_facade() -> AsyncIterator[tuple[str, FakeBackend, asyncio.Event, asyncio.Task[Any]]]:
    """A facade that holds max_pending=1 message, held by its backend until `release` is set:
    (its URL, the backend, release, the POST it holds)."""
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        await release.wait()
        return await store_ok(request)

    async with (
        fake_backend(held) as one,
        facade(config([one.url], max_pending=1, deadline=30.0, request_timeout=30.0)) as url,
    ):
        first = asyncio.create_task(fetch_json("POST", url + "/", data=b"a"))

        async def sent() -> bool:
            return len(one.posted) == 1

        await wait_until(sent)
        yield url, one, release, first


async def test_past_max_pending_a_post_is_turned_away_before_its_body_is_read() -> None:
    """The overload check comes first: a body that would be a 400 is not even parsed (nothing
    is stored either way, so the client learns about its body when it comes back)."""
    async with full_facade() as (url, one, release, first):
        bad_json = await fetch(
            "POST", url + "/", data=b"{not json", headers={"Content-Type": "application/json"}
        )
        bad_key = await fetch("POST", url + "/", data=b"b", headers={HEADER: "k" * 300})
        release.set()
        assert (await first)[0] == 201
        after = await fetch(
            "POST", url + "/", data=b"{not json", headers={"Content-Type": "application/json"}
        )
    for status, headers, body in (bad_json, bad_key):
        assert status == 503, body
        assert headers["Retry-After"] in {"1", "2", "3"}
        assert json.loads(body)["error"] == "overloaded"
    assert after[0] == 400, after[2]
    assert [p["msg"] for p in one.posted] == ["a"]


async def test_past_max_pending_a_post_is_answered_before_its_body_arrives() -> None:
    """A full facade answers a POST on its headers: the client has sent half its body and
    gets the 503 without sending the rest (a facade that reads the body first never answers
    it, and the wait below turns that into a failure)."""
    async with full_facade() as (url, one, release, first):
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhalf ")
        await writer.drain()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        finally:
            writer.close()
        release.set()
        assert (await first)[0] == 201
    assert head.startswith(b"HTTP/1.1 503"), head
    assert b"retry-after:" in head.lower()
    assert [p["msg"] for p in one.posted] == ["a"]


async def test_a_post_is_stored_whole_and_limited_though_its_body_is_read_late() -> None:
    """The POST route reads its body itself (after the overload check): all of it, in
    pieces or chunked, and still no more than the body limit."""
    async with (
        fake_backend(store_ok) as one,
        facade(config([one.url], max_body_bytes=1000)) as url,
    ):

        async def pieces(*texts: bytes) -> AsyncIterator[bytes]:
            for text in texts:
                yield text

        status, _ = await fetch_json("POST", url + "/", data=pieces(b"in ", b"three ", b"pieces"))
        too_big, answer = await fetch_json("POST", url + "/", data=pieces(b"x" * 600, b"y" * 600))
    assert status == 201
    assert [p["msg"] for p in one.posted] == ["in three pieces"]
    assert (too_big, answer["error"]) == (413, "payload_too_large")


def test_max_pending_is_configurable_with_a_default() -> None:
    assert FacadeConfig(port=1).max_pending >= 1
    assert FacadeConfig(port=1, max_pending=7).max_pending == 7
    with pytest.raises(ValueError, match="max_pending"):
        FacadeConfig(port=1, max_pending=0)


# --- item 5: Idempotency-Key --------------------------------------------------------------


class KeyedStore:
    """A logging instance that stores by UUID as the real one does (201, 200, 409)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def reply(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return web.json_response({"messages": list(self.data.values())})
        body = await request.json()
        previous = self.data.setdefault(body["uuid"], body)
        if previous is body:
            return web.json_response({"uuid": body["uuid"], "stored": True}, status=201)
        if previous["msg"] != body["msg"]:
            detail = {"error": "uuid_conflict", "detail": "taken"}
            return web.json_response({"uuid": body["uuid"], **detail}, status=409)
        return web.json_response({"uuid": body["uuid"], "stored": False}, status=200)


async def test_the_same_key_stores_once_and_answers_201_then_200_with_one_uuid() -> None:
    store = KeyedStore()
    async with fake_backend(store.reply) as one, facade(config([one.url])) as url:
        headers = {HEADER: "order-42"}
        first = await fetch_json("POST", url + "/", data=b"pay 5", headers=headers)
        again = await fetch_json("POST", url + "/", json={"msg": "pay 5"}, headers=headers)
        other = await fetch_json("POST", url + "/", data=b"pay 5", headers={HEADER: "order-43"})
    assert first == (201, {"uuid": message_uuid("order-42")})
    assert again == (200, first[1])
    assert other[0] == 201
    assert [m["msg"] for m in store.data.values()] == ["pay 5", "pay 5"]


async def test_a_key_used_again_with_another_message_is_422() -> None:
    store = KeyedStore()
    async with fake_backend(store.reply) as one, facade(config([one.url])) as url:
        await fetch_json("POST", url + "/", data=b"first", headers={HEADER: "k"})
        status, body = await fetch_json("POST", url + "/", data=b"second", headers={HEADER: "k"})
    assert (status, body["error"]) == (422, "idempotency_key_reused")
    assert [m["msg"] for m in store.data.values()] == ["first"]


@pytest.mark.parametrize(
    "value",
    ["x" * 256, "caf\u00e9", "tab\tinside"],
    ids=["too-long", "non-ascii", "control"],
)
async def test_a_bad_key_is_a_json_400_and_nothing_is_sent(value: str) -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        status, body = await fetch_json(
            "POST", url + "/", data=b"m", headers={HEADER: value.encode("utf-8").decode("latin-1")}
        )
    assert (status, body["error"]) == (400, "invalid_idempotency_key")
    assert one.received == []


def test_a_key_is_its_value_as_sent() -> None:
    assert parse_key('"order 42"') == '"order 42"'
    assert parse_key("order 42") == "order 42"
    assert parse_key("x" * 255) == "x" * 255
    assert message_uuid("k") == str(uuid.uuid5(NAMESPACE, "k")) != message_uuid("k2")
    for bad in ("", "x" * 256, "\u00e9", "\x7f", "a\tb"):
        with pytest.raises(ApiError):
            parse_key(bad)


async def test_a_key_given_twice_is_400() -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        status, body = await fetch_json(
            "POST", url + "/", data=b"m", headers=[(HEADER, "a"), (HEADER, "b")]
        )
    assert (status, body["error"]) == (400, "invalid_idempotency_key")
    assert one.received == []


class FullStore(FakeStore):
    """A store that answers with its own client-visible error (say, a full log)."""

    async def put_if_absent(self, message: StoredMessage) -> StoredMessage | None:
        raise ApiError(507, "log_full", "no room")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/", {"uuid": U1, "msg": "m"}), ("/batch", {"messages": [{"uuid": U1, "msg": "m"}]})],
)
async def test_a_store_error_meant_for_the_client_keeps_its_status(path: str, body: Any) -> None:
    async with logging_instance(FullStore()) as url:
        status, answer = await fetch_json("POST", url + path, json=body)
    assert (status, answer["error"]) == (507, "log_full")
