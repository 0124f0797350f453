"""CLI for `hazelog local` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.group(name="local")
def local() -> None:
    """Not implemented yet."""
    raise click.ClickException("hazelog local: not implemented yet")
