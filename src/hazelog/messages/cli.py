"""CLI for `hazelog messages` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command(name="messages")
def messages() -> None:
    """Not implemented yet."""
    raise click.ClickException("hazelog messages: not implemented yet")
