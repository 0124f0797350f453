"""`hazelog logging`: run one logging instance."""

from __future__ import annotations

from pathlib import Path

import click

from hazelog.config import LoggingConfig
from hazelog.web.app import serve
from hazelog.web.cli_support import config_option, host_option, load_or_fail, port_option
from hazelog.web.logs import setup_logging


@click.command(name="logging")
@config_option
@host_option
@port_option
@click.option("--cluster-name", default=None, help="Hazelcast cluster name.")
@click.option(
    "--member",
    "members",
    multiple=True,
    metavar="HOST:PORT",
    help="Hazelcast member address (repeatable; own member first).",
)
def logging_service(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    cluster_name: str | None,
    members: tuple[str, ...],
) -> None:
    """Run a logging instance storing messages in the Hazelcast map."""
    overrides = {"host": host, "port": port, "cluster_name": cluster_name, "members": members}
    config = load_or_fail(LoggingConfig, config_path, overrides)
    setup_logging(f"hazelog-logging-{config.port}")
    from hazelog.logging_service.app import create_app

    serve(create_app(config))
