"""The `hazelog` command: the services' subcommands, plus commands that other distributions
plug in (hazelog-tools adds `local` on the controller)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

import click

from hazelog import __version__
from hazelog.check_config import check_config
from hazelog.facade.cli import facade
from hazelog.logging_service.cli import logging_service
from hazelog.messages.cli import messages

PLUGIN_GROUP = "hazelog.commands"


class PluggableGroup(click.Group):
    """Its own commands, plus the click commands registered under the `hazelog.commands`
    entry point group. A plugin is imported only when its command is invoked (or asked for
    its own help): starting a service never imports the controller's tools, and the hosts,
    which do not install them, never miss them."""

    def plugins(self) -> dict[str, EntryPoint]:
        return {
            entry.name: entry
            for entry in entry_points(group=PLUGIN_GROUP)
            if entry.name not in self.commands
        }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*self.commands, *self.plugins()])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is not None:
            return command
        entry = self.plugins().get(cmd_name)
        if entry is None:
            return None
        loaded = entry.load()
        if not isinstance(loaded, click.Command):
            raise click.ClickException(f"{PLUGIN_GROUP} entry point {entry.value} is no command")
        return loaded

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Plugins are listed by name and origin only: their short help would mean importing them.
        limit = (
            formatter.width - 6 - max((len(name) for name in self.list_commands(ctx)), default=0)
        )
        rows = [
            (name, command.get_short_help_str(limit))
            for name, command in self.commands.items()
            if not command.hidden
        ]
        rows += [
            (name, f"From {entry.dist.name if entry.dist else entry.module}: hazelog {name} --help")
            for name, entry in self.plugins().items()
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(cls=PluggableGroup)
@click.version_option(__version__, prog_name="hazelog")
def main() -> None:
    """hazelog: a message log on Sanic and Hazelcast."""


main.add_command(check_config)
main.add_command(facade)
main.add_command(logging_service)
main.add_command(messages)
