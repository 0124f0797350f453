"""CLI for `hazelog logging` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command(name="logging")
def logging_service() -> None:
    """Not implemented yet."""
    raise click.ClickException("hazelog logging: not implemented yet")
