"""The lower bound of one HTTP hop: a Sanic app that answers every POST with 201 and does
nothing else (no parsing, no storage), served the way hazelog serves its services."""

from __future__ import annotations

import sys
from types import SimpleNamespace

from sanic import Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, json


def create_bare_app() -> Sanic[Config, SimpleNamespace]:
    app: Sanic[Config, SimpleNamespace] = Sanic("hazelog-bench-bare")
    app.config.ACCESS_LOG = False
    app.config.MOTD = False

    @app.post("/")
    async def accept(request: Request) -> HTTPResponse:
        return json({"stored": True}, status=201)

    @app.get("/ready")
    async def ready(request: Request) -> HTTPResponse:
        return json({"status": "ready"})

    return app


def main(argv: list[str]) -> None:
    host, port = argv[1], int(argv[2])
    create_bare_app().run(host=host, port=port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main(sys.argv)
