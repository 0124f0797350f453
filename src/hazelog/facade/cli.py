"""`hazelog facade`: run the facade service."""

from __future__ import annotations

from pathlib import Path

import click

from hazelog.config import FacadeConfig
from hazelog.web.app import serve
from hazelog.web.cli_support import config_option, host_option, load_or_fail, port_option
from hazelog.web.logs import setup_logging


@click.command(name="facade")
@config_option
@host_option
@port_option
@click.option(
    "--logging-url",
    "logging_urls",
    multiple=True,
    metavar="URL",
    help="Logging instance base URL (repeatable).",
)
@click.option("--messages-url", default=None, metavar="URL", help="Messages service URL.")
@click.option(
    "--max-pending",
    type=int,
    default=None,
    help="Messages held at most; past it a POST gets 503 with Retry-After.",
)
def facade(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    logging_urls: tuple[str, ...],
    messages_url: str | None,
    max_pending: int | None,
) -> None:
    """Run the facade: accepts messages and reads them back."""
    overrides = {
        "host": host,
        "port": port,
        "logging_urls": logging_urls,
        "messages_url": messages_url,
        "max_pending": max_pending,
    }
    config = load_or_fail(FacadeConfig, config_path, overrides)
    setup_logging(f"hazelog-facade-{config.port}")
    from hazelog.facade.app import create_app

    serve(create_app(config))
