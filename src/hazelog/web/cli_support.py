"""What every service command does: load the config (file + flags), then serve one process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hazelog.config import ConfigError, ConfigT, load_config

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file with the service's settings (flags win).",
)
host_option = click.option("--host", default=None, help="Address to listen on.")
port_option = click.option("--port", type=int, default=None, help="Port to listen on.")


def load_or_fail(model: type[ConfigT], path: Path | None, overrides: dict[str, Any]) -> ConfigT:
    try:
        return load_config(model, path, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
