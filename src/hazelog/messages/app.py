"""The messages service: a static text (the lab's placeholder for a future service)."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, text

from hazelog.config import MessagesConfig
from hazelog.web.app import App, build_app, readiness


def create_app(config: MessagesConfig) -> App:
    app = build_app("hazelog-messages", config)

    @app.before_server_start
    async def open_resources(app: App) -> None:
        readiness(app).mark_resources_ready()

    @app.get("/")
    async def index(request: Request) -> HTTPResponse:
        return text(config.text)

    return app
