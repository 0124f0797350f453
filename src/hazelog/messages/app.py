"""The messages service: a static text (the lab's placeholder for a future service)."""

from __future__ import annotations

from types import SimpleNamespace

from sanic import Blueprint, Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, text

from hazelog.config import MessagesConfig
from hazelog.web.app import ServiceApp, ServiceContext, build_app


class MessagesContext(ServiceContext):
    config: MessagesConfig

    def __init__(self, config: MessagesConfig) -> None:
        super().__init__(config)
        self.config = config


MessagesApp = ServiceApp[MessagesContext]
MessagesRequest = Request[Sanic[Config, MessagesContext], SimpleNamespace]

routes = Blueprint("messages")


@routes.get("/")
async def index(request: MessagesRequest) -> HTTPResponse:
    return text(request.app.ctx.config.text)


async def open_resources(app: MessagesApp) -> None:
    app.ctx.readiness.mark_resources_ready()


def create_app(config: MessagesConfig) -> MessagesApp:
    app = build_app("hazelog-messages", MessagesContext(config))
    app.blueprint(routes)
    app.before_server_start(open_resources)
    return app
