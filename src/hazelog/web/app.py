"""Building and running a hazelog Sanic service: JSON errors, body limit, /health, /ready,
READY=1 and watchdog pings for systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import SimpleNamespace

from sanic import Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, json

from hazelog.config import ServiceConfig
from hazelog.web.errors import JsonErrorHandler, error_body
from hazelog.web.sdnotify import notify, watchdog_interval, watchdog_loop

log = logging.getLogger("hazelog.web")

# Our apps use Sanic's default config and context types.
App = Sanic[Config, SimpleNamespace]

# Returns None when the service's own resources are usable, else why not.
ReadyCheck = Callable[[], str | None]


class Readiness:
    """Ready = the server listens and the service's resources are usable.

    READY=1 goes to systemd once, the first time both hold; /ready reflects the current state.
    """

    def __init__(self) -> None:
        self.listening = False
        self.check: ReadyCheck = lambda: None
        self._resources = asyncio.Event()

    def mark_resources_ready(self) -> None:
        self._resources.set()

    async def wait_resources(self) -> None:
        await self._resources.wait()

    def problem(self) -> str | None:
        if not self.listening:
            return "server is not listening yet"
        # The service's own reason (e.g. "not connected to the cluster") says the most.
        problem = self.check()
        if problem is None and not self._resources.is_set():
            problem = "service is still starting"
        return problem


def readiness(app: App) -> Readiness:
    value: Readiness = app.ctx.readiness
    return value


def build_app(name: str, config: ServiceConfig) -> App:
    app: App = Sanic(name, error_handler=JsonErrorHandler())
    app.config.REQUEST_MAX_SIZE = config.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.ctx.config = config
    app.ctx.readiness = Readiness()
    app.ctx.background = []

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        problem = readiness(request.app).problem()
        if problem is not None:
            return json(error_body("not_ready", problem), status=503)
        return json({"status": "ready"})

    @app.after_server_start
    async def announce(app: App) -> None:
        readiness(app).listening = True
        app.ctx.background.append(asyncio.create_task(_notify_when_ready(app)))
        interval = watchdog_interval()
        if interval is not None:
            app.ctx.background.append(asyncio.create_task(watchdog_loop(interval)))

    @app.before_server_stop
    async def stopping(app: App) -> None:
        notify("STOPPING=1")
        readiness(app).listening = False
        tasks: list[asyncio.Task[None]] = app.ctx.background
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    return app


async def _notify_when_ready(app: App) -> None:
    await readiness(app).wait_resources()
    config: ServiceConfig = app.ctx.config
    notify("READY=1")
    log.info("%s ready on %s:%d", app.name, config.host, config.port)


def serve(app: App) -> None:
    """Run `app` in this process (no worker fork) until SIGINT/SIGTERM, then drain and stop."""
    config: ServiceConfig = app.ctx.config
    app.run(
        host=config.host,
        port=config.port,
        single_process=True,
        access_log=False,
        motd=False,
    )
