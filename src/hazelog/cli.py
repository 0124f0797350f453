"""The `hazelog` command: one entry point for the services, and the local runner."""

from __future__ import annotations

import click

from hazelog import __version__
from hazelog.facade.cli import facade
from hazelog.local.cli import local
from hazelog.logging_service.cli import logging_service
from hazelog.messages.cli import messages


@click.group()
@click.version_option(__version__, prog_name="hazelog")
def main() -> None:
    """hazelog: a message log on Sanic and Hazelcast."""


main.add_command(facade)
main.add_command(logging_service)
main.add_command(messages)
main.add_command(local)
