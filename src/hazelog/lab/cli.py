"""CLI for `hazelog lab` (placeholder until implemented)."""

from __future__ import annotations

import click


@click.group(name="lab")
def lab() -> None:
    """Not implemented yet."""
    raise click.ClickException("hazelog lab: not implemented yet")
