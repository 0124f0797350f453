from __future__ import annotations

import pytest

from hazelog.config import MessagesConfig
from hazelog.messages.app import create_app
from tests.unit.servers import fetch, fetch_json, serve_app


async def test_get_root_answers_the_configured_text() -> None:
    async with serve_app(create_app(MessagesConfig(port=1, text="hello there"))) as url:
        status, headers, body = await fetch("GET", url + "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    assert body.decode() == "hello there"


async def test_default_text_is_the_lab_placeholder() -> None:
    async with serve_app(create_app(MessagesConfig())) as url:
        _, _, body = await fetch("GET", url + "/")
    assert body.decode() == "not implemented yet"


async def test_health_and_ready() -> None:
    async with serve_app(create_app(MessagesConfig())) as url:
        assert await fetch_json("GET", url + "/health") == (200, {"status": "ok"})
        assert await fetch_json("GET", url + "/ready") == (200, {"status": "ready"})


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("POST", "/", 405, "method_not_allowed"),
        ("DELETE", "/", 405, "method_not_allowed"),
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/health", 405, "method_not_allowed"),
    ],
)
async def test_bad_requests_get_json_errors(
    method: str, path: str, status: int, error: str
) -> None:
    async with serve_app(create_app(MessagesConfig())) as url:
        got_status, body = await fetch_json(method, url + path)
    assert got_status == status
    assert body["error"] == error
    assert body["detail"]
