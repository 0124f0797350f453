"""The facade over HTTP against fake logging instances and a fake messages service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from hazelog.config import FacadeConfig
from hazelog.facade.app import WARNING_HEADER, create_app
from tests.unit.servers import (
    dead_url,
    fake_backend,
    fetch,
    fetch_json,
    serve_app,
)


class FrozenClock:
    """Cooldowns never end during a test unless it moves the clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


STORED: list[dict[str, Any]] = [
    {"uuid": "00000000-0000-4000-8000-000000000001", "msg": "msg1", "accepted_at": 1},
    {"uuid": "00000000-0000-4000-8000-000000000002", "msg": "msg2", "accepted_at": 2},
]


async def store_ok(request: web.Request) -> web.StreamResponse:
    if request.method == "GET":
        return web.json_response({"messages": STORED})
    body = await request.json()
    return web.json_response({"uuid": body["uuid"], "stored": True}, status=201)


async def server_error(request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "unavailable", "detail": "cluster away"}, status=503)


async def hang(request: web.Request) -> web.StreamResponse:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def garbage(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>proxy error</html>", status=200)


async def reject(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {"error": "empty_message", "detail": "msg must not be empty"}, status=400
    )


async def log_full(request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "log_full", "detail": "the log is full: ..."}, status=507)


async def messages_text(request: web.Request) -> web.StreamResponse:
    return web.Response(text="not implemented yet")


class ConfiguredOrder(random.Random):
    """Healthy instances in configuration order: the random pick itself is tested in
    test_failover; here each test decides which instance is asked first."""

    def shuffle(self, x: Any) -> None:
        return None


def config(logging_urls: list[str], messages_url: str | None = None, **extra: Any) -> FacadeConfig:
    values: dict[str, Any] = {
        "port": 1,
        "logging_urls": logging_urls,
        "messages_url": messages_url or dead_url(),
        "request_timeout": 0.5,
        "deadline": 3.0,
        "cooldown": 60.0,
    }
    values.update(extra)
    return FacadeConfig.model_validate(values)


@contextlib.asynccontextmanager
async def facade(cfg: FacadeConfig, clock: FrozenClock | None = None) -> AsyncIterator[str]:
    app = create_app(cfg, clock=clock or FrozenClock(), rng=ConfiguredOrder())
    async with serve_app(app) as url:
        yield url


async def post_text(url: str, text: str) -> tuple[int, Any]:
    return await fetch_json("POST", url + "/", data=text.encode())


# --- POST ------------------------------------------------------------------------------


async def test_post_text_stores_once_with_one_uuid_and_accept_time() -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        status, body = await post_text(url, "hello world")
    assert status == 201
    assert list(body) == ["uuid"]
    assert str(uuid.UUID(body["uuid"])) == body["uuid"]
    [sent] = one.posted
    assert sent["uuid"] == body["uuid"]
    assert sent["msg"] == "hello world"
    assert isinstance(sent["accepted_at"], int)
    assert sent["accepted_at"] > 0


async def test_post_json_msg() -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        status, _ = await fetch_json("POST", url + "/", json={"msg": "from json"})
    assert status == 201
    assert [p["msg"] for p in one.posted] == ["from json"]


async def test_post_form_encoded_body_counts_as_text() -> None:
    # curl -d sends application/x-www-form-urlencoded; the body is still the message.
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _ = await fetch_json("POST", url + "/", data=b"msg1", headers=headers)
    assert status == 201
    assert [p["msg"] for p in one.posted] == ["msg1"]


async def test_post_keeps_unicode_and_drops_one_trailing_newline() -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        await post_text(url, "grüße, 世界\n")
    assert [p["msg"] for p in one.posted] == ["grüße, 世界"]


@pytest.mark.parametrize("failure", [server_error, hang, garbage], ids=["5xx", "timeout", "junk"])
async def test_post_fails_over_with_the_same_uuid(failure: Any) -> None:
    async with (
        fake_backend(failure) as bad,
        fake_backend(store_ok) as good,
        facade(config([bad.url, good.url])) as url,
    ):
        status, body = await post_text(url, "m")
    assert status == 201
    [first], [second] = bad.posted, good.posted
    assert first == second
    assert body == {"uuid": first["uuid"]}


async def test_post_fails_over_on_connection_refused() -> None:
    clock = FrozenClock()
    down = dead_url()
    async with fake_backend(store_ok) as good, facade(config([down, good.url]), clock) as url:
        for _ in range(10):
            assert (await post_text(url, "m"))[0] == 201
        assert len(good.posted) == 10
        status, body = await fetch_json("GET", url + "/", headers={"Accept": "application/json"})
    assert status == 200
    assert [m["msg"] for m in body["messages"]] == ["msg1", "msg2"]


async def test_failed_instance_is_skipped_while_cooling_down() -> None:
    clock = FrozenClock()
    async with (
        fake_backend(server_error) as bad,
        fake_backend(store_ok) as good,
        facade(config([bad.url, good.url]), clock) as url,
    ):
        for _ in range(20):
            assert (await post_text(url, "m"))[0] == 201
        # Asked first and failed, then it sits in cooldown (the clock is frozen).
        assert len(bad.posted) == 1
        assert len(good.posted) == 20
        clock.now += 61  # cooldown over: asked first again
        assert (await post_text(url, "m"))[0] == 201
        assert len(bad.posted) == 2


async def test_post_all_down_is_503_naming_every_attempt() -> None:
    urls = [dead_url(), dead_url()]
    async with fake_backend(server_error) as bad, facade(config([*urls, bad.url])) as url:
        status, body = await post_text(url, "m")
    assert status == 503
    assert body["error"] == "no_logging_instance"
    assert body["detail"]
    assert {a["url"] for a in body["attempts"]} == {*urls, bad.url}
    errors = {a["url"]: a["error"] for a in body["attempts"]}
    # The instance's own reason is kept, and the answer's detail ends with the last one.
    assert errors[bad.url] == "HTTP 503 unavailable: cluster away"
    assert body["detail"].endswith(f"; last: {body['attempts'][-1]['error']}")
    assert all(errors[u] for u in urls)
    # The instance that answered (badly) is alive: asked again until the deadline.
    assert [a["url"] for a in body["attempts"]].count(bad.url) >= 2


async def test_post_with_nothing_listening_is_503_at_once() -> None:
    urls = [dead_url(), dead_url()]
    async with facade(config(urls, deadline=60.0)) as url:
        status, body = await post_text(url, "m")
    assert status == 503
    assert sorted(a["url"] for a in body["attempts"]) == sorted(urls)
    assert body["detail"].startswith("all 2 logging instance(s) failed; last: ")


async def test_post_client_error_from_logging_is_passed_on_without_failover() -> None:
    async with (
        fake_backend(reject) as rejecting,
        fake_backend(store_ok) as other,
        facade(config([rejecting.url, other.url])) as url,
    ):
        status, body = await post_text(url, "m")
    assert (status, body) == (400, {"error": "empty_message", "detail": "msg must not be empty"})
    assert len(rejecting.posted) == 1
    assert other.received == []


async def test_post_log_full_is_passed_on_as_507_without_retrying() -> None:
    # Every instance shares one map: when one is out of room, all are; asking again (as for
    # a 503) would only hold the client until the deadline.
    async with fake_backend(log_full) as full, facade(config([full.url])) as url:
        status, body = await post_text(url, "m")
    assert (status, body) == (507, {"error": "log_full", "detail": "the log is full: ..."})
    assert len(full.posted) == 1


# --- bad input: rejected before any logging instance is contacted -------------------------


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": b""}, 400, "empty_message"),
        ({"data": b"  \n"}, 400, "empty_message"),
        ({"data": b"\xff\xfeabc"}, 400, "invalid_utf8"),
        ({"json": {"msg": ""}}, 400, "empty_message"),
        ({"json": {"msg": 5}}, 400, "invalid_shape"),
        ({"json": {"text": "x"}}, 400, "invalid_shape"),
        ({"json": ["msg"]}, 400, "invalid_shape"),
        ({"json": {"msg": "\ud800"}}, 400, "invalid_utf8"),
        (
            {"data": b'{"msg": ', "headers": {"Content-Type": "application/json"}},
            400,
            "malformed_json",
        ),
        ({"data": b"x" * 2049}, 413, "payload_too_large"),
    ],
)
async def test_bad_post_is_rejected_and_nothing_is_sent(
    kwargs: dict[str, Any], status: int, error: str
) -> None:
    async with (
        fake_backend(store_ok) as one,
        facade(config([one.url], max_body_bytes=2048)) as url,
    ):
        got_status, body = await fetch_json("POST", url + "/", **kwargs)
    assert (got_status, body["error"]) == (status, error)
    assert body["detail"]
    assert one.received == []


async def test_body_at_the_limit_is_accepted() -> None:
    async with (
        fake_backend(store_ok) as one,
        facade(config([one.url], max_body_bytes=2048)) as url,
    ):
        status, _ = await post_text(url, "x" * 2048)
    assert status == 201


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("PUT", "/", 405), ("DELETE", "/", 405), ("GET", "/missing", 404), ("POST", "/x", 404)],
)
async def test_wrong_method_or_path_is_json(method: str, path: str, status: int) -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url])) as url:
        got_status, body = await fetch_json(method, url + path, data=b"m")
    assert got_status == status
    assert set(body) == {"error", "detail"}
    assert one.received == []


# --- GET -------------------------------------------------------------------------------


async def test_get_plain_text_lists_messages_then_the_messages_text() -> None:
    async with (
        fake_backend(store_ok) as one,
        fake_backend(messages_text) as msgs,
        facade(config([one.url], msgs.url)) as url,
    ):
        status, headers, body = await fetch("GET", url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert body.decode().splitlines() == ["msg1", "msg2", "not implemented yet"]
    assert WARNING_HEADER not in headers


async def test_get_json_on_request() -> None:
    async with (
        fake_backend(store_ok) as one,
        fake_backend(messages_text) as msgs,
        facade(config([one.url], msgs.url)) as url,
    ):
        status, body = await fetch_json("GET", url + "/", headers={"Accept": "application/json"})
    assert status == 200
    assert body == {"messages": STORED, "text": "not implemented yet", "warnings": []}


async def test_get_without_messages_service_says_so_and_still_answers() -> None:
    async with fake_backend(store_ok) as one, facade(config([one.url], dead_url())) as url:
        status, body = await fetch_json("GET", url + "/", headers={"Accept": "application/json"})
        plain_status, headers, plain = await fetch("GET", url + "/")
    assert status == 200
    assert body["messages"] == STORED
    assert body["text"] is None
    assert len(body["warnings"]) == 1
    assert "messages service unreachable" in body["warnings"][0]
    assert plain_status == 200
    assert plain.decode().splitlines() == ["msg1", "msg2"]
    assert "messages service unreachable" in headers[WARNING_HEADER]


@pytest.mark.parametrize("failure", [server_error, hang, garbage], ids=["5xx", "timeout", "junk"])
async def test_get_fails_over_to_a_live_instance(failure: Any) -> None:
    async with (
        fake_backend(failure) as bad,
        fake_backend(store_ok) as good,
        fake_backend(messages_text) as msgs,
        facade(config([bad.url, good.url], msgs.url)) as url,
    ):
        status, body = await fetch_json("GET", url + "/", headers={"Accept": "application/json"})
    assert status == 200
    assert body["messages"] == STORED
    assert len(bad.received) == 1
    assert len(good.received) == 1


async def test_get_with_no_logging_instance_is_503() -> None:
    async with fake_backend(messages_text) as msgs, facade(config([dead_url()], msgs.url)) as url:
        status, body = await fetch_json("GET", url + "/")
    assert status == 503
    assert body["error"] == "no_logging_instance"
    assert len(body["attempts"]) == 1


async def test_health_and_ready() -> None:
    # Alive, but it cannot serve: its only logging instance is not there (see test_facade_safety).
    async with facade(config([dead_url()])) as url:
        assert await fetch_json("GET", url + "/health") == (200, {"status": "ok"})
        status, body = await fetch_json("GET", url + "/ready")
    assert (status, body["error"]) == (503, "not_ready")


def test_json_shapes_are_stable() -> None:
    # The 503 body is part of the interface other tools parse.
    from hazelog.facade.app import unavailable
    from hazelog.facade.failover import Attempt, NoInstanceAvailable

    response = unavailable(NoInstanceAvailable("d", [Attempt("http://a/", "e")]))
    assert response.status == 503
    assert json.loads(response.body or b"") == {
        "error": "no_logging_instance",
        "detail": "d; last: e",
        "attempts": [{"url": "http://a/", "error": "e"}],
    }
