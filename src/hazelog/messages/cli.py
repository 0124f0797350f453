"""`hazelog messages`: run the messages service."""

from __future__ import annotations

from pathlib import Path

import click

from hazelog.config import MessagesConfig
from hazelog.web.app import serve
from hazelog.web.cli_support import config_option, host_option, load_or_fail, port_option
from hazelog.web.logs import setup_logging


@click.command(name="messages")
@config_option
@host_option
@port_option
def messages(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Run the messages service (GET / answers a static text)."""
    config = load_or_fail(MessagesConfig, config_path, {"host": host, "port": port})
    setup_logging(f"hazelog-messages-{config.port}")
    from hazelog.messages.app import create_app

    serve(create_app(config))
