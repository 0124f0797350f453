"""CLI for `hazelog facade` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.command(name="facade")
def facade() -> None:
    """Not implemented yet."""
    raise click.ClickException("hazelog facade: not implemented yet")
