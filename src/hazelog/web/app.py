"""Building and running a hazelog Sanic service: JSON errors, body limit, /health, /ready,
/metrics, READY=1 and watchdog pings for systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, TypeVar

from sanic import Blueprint, Request, Sanic
from sanic.config import Config
from sanic.response import BaseHTTPResponse, HTTPResponse, json

from hazelog.config import ServiceConfig
from hazelog.web.errors import JsonErrorHandler, error_body
from hazelog.web.metrics import ServiceMetrics, metrics_response, observe, started
from hazelog.web.sdnotify import notify, watchdog_interval, watchdog_loop

log = logging.getLogger("hazelog.web")

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


class ServiceContext:
    """What every hazelog service keeps on `app.ctx`; each service extends it with its own."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.readiness = Readiness()
        self.background: list[asyncio.Task[None]] = []
        self.metrics = ServiceMetrics()


CtxT = TypeVar("CtxT", bound=ServiceContext)
# An app of one service, typed by its context (`request.app.ctx` in the handlers).
ServiceApp = Sanic[Config, CtxT]
# Any of our apps, when only the common part of the context matters.
App = Sanic[Config, Any]
AnyRequest = Request[Sanic[Config, ServiceContext], SimpleNamespace]


service_routes = Blueprint("service")


@service_routes.get("/health")
async def health(request: AnyRequest) -> HTTPResponse:
    return json({"status": "ok"})


@service_routes.get("/ready")
async def ready(request: AnyRequest) -> HTTPResponse:
    problem = request.app.ctx.readiness.problem()
    if problem is not None:
        return json(error_body("not_ready", problem), status=503)
    return json({"status": "ready"})


@service_routes.get("/metrics")
async def metrics(request: AnyRequest) -> HTTPResponse:
    return await metrics_response(request.app.ctx.metrics)


async def time_request(request: AnyRequest) -> None:
    started(request)


async def count_response(request: AnyRequest, response: BaseHTTPResponse) -> None:
    observe(request.app.ctx.metrics, request, response)


async def announce(app: Sanic[Config, ServiceContext]) -> None:
    app.ctx.readiness.listening = True
    app.ctx.background.append(asyncio.create_task(_notify_when_ready(app)))
    interval = watchdog_interval()
    if interval is not None:
        app.ctx.background.append(asyncio.create_task(watchdog_loop(interval)))


async def stopping(app: Sanic[Config, ServiceContext]) -> None:
    notify("STOPPING=1")
    app.ctx.readiness.listening = False
    tasks = app.ctx.background
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()


def build_app(name: str, ctx: CtxT) -> ServiceApp[CtxT]:
    """A Sanic app with JSON errors, the body limit, /health, /ready and systemd notices."""
    app: ServiceApp[CtxT] = Sanic(name, ctx=ctx, error_handler=JsonErrorHandler())
    app.config.REQUEST_MAX_SIZE = ctx.config.max_body_bytes
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.blueprint(service_routes)
    app.register_middleware(time_request, "request")
    app.register_middleware(count_response, "response")
    app.after_server_start(announce)
    app.before_server_stop(stopping)
    return app


async def _notify_when_ready(app: Sanic[Config, ServiceContext]) -> None:
    await app.ctx.readiness.wait_resources()
    config = app.ctx.config
    notify("READY=1")
    log.info("%s ready on %s:%d", app.name, config.host, config.port)


def serve(app: App) -> None:
    """Run `app` in this process (no worker fork) until SIGINT/SIGTERM, then drain and stop."""
    config: ServiceConfig = app.ctx.config
    app.run(
        host=config.host,
        port=config.port,
        backlog=config.backlog,
        single_process=True,
        access_log=False,
        motd=False,
    )
