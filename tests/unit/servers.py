"""Real servers on free loopback ports, inside the test's event loop: the app under test
(Sanic, so limits like REQUEST_MAX_SIZE behave as in production) and scriptable fake
backends (aiohttp) standing in for logging instances and the messages service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from hazelog.web.app import App


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    return sock


@contextlib.asynccontextmanager
async def serve_app(app: App) -> AsyncIterator[str]:
    """Run `app` with its full listener lifecycle; yield its base URL."""
    sock = listening_socket()
    port = sock.getsockname()[1]
    # Sanic's AsyncioServer is untyped; its lifecycle calls are the documented low-level API.
    server: Any = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()
        sock.close()


async def wait_until(predicate: Callable[[], Awaitable[bool]], attempts: int = 200) -> None:
    """Poll `predicate` (what a process supervisor would do); no timing is asserted."""
    for _ in range(attempts):
        if await predicate():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("condition never became true")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FakeBackend:
    """A logging instance or messages service whose answers a test scripts.

    `reply` decides each answer; every request body is kept in `received`.
    """

    reply: Handler
    received: list[tuple[str, Any]] = field(default_factory=list)
    url: str = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.received.append((request.method, body))
        return await self.reply(request)

    @property
    def posted(self) -> list[Any]:
        return [body for method, body in self.received if method == "POST"]


@contextlib.asynccontextmanager
async def fake_backend(reply: Handler, ready: Handler | None = None) -> AsyncIterator[FakeBackend]:
    """`ready` answers GET /ready (not recorded in `received`); without it, /ready is 404."""
    backend = FakeBackend(reply)
    app = web.Application()
    app.router.add_route("*", "/", backend._handle)
    if ready is not None:
        app.router.add_get("/ready", ready)
    # A short shutdown timeout: some fakes hang on purpose.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    sock = listening_socket()
    site = web.SockSite(runner, sock)
    await site.start()
    backend.url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    try:
        yield backend
    finally:
        await runner.cleanup()
        sock.close()


def dead_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}/"


async def fetch(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def fetch_json(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    status, headers, body = await fetch(method, url, **kwargs)
    assert headers.get("Content-Type", "").startswith("application/json"), (status, body)
    return status, json.loads(body)
