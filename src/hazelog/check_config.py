"""`hazelog check-config SERVICE FILE`: validate a service's TOML before it goes live.

Ansible's template `validate:` runs it against the rendered file, so a config the service
would refuse never replaces the one a running unit uses.
"""

from __future__ import annotations

from pathlib import Path

import click

from hazelog.config import (
    ConfigError,
    FacadeConfig,
    LoggingConfig,
    MessagesConfig,
    ServiceConfig,
    load_config,
)

MODELS: dict[str, type[ServiceConfig]] = {
    "facade": FacadeConfig,
    "logging": LoggingConfig,
    "messages": MessagesConfig,
}


@click.command(name="check-config")
@click.argument("service", type=click.Choice(sorted(MODELS)))
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check_config(service: str, path: Path) -> None:
    """Check that PATH is a valid config for SERVICE; exit 1 naming the problem if not."""
    try:
        load_config(MODELS[service], path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{path}: valid {service} config")
