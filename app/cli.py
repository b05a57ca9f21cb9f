"""`flask` commands of the portal: demo data and plugins."""
from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.plugins import plugin_names
from app.security import sync_roles

plugins_cli = AppGroup("plugins", help="Плагины портала.")


@plugins_cli.command("list")
def list_plugins() -> None:
    """Print the loaded plugins and the hooks each implements."""
    pm = current_app.extensions["plugins"]
    for name in plugin_names(pm):
        plugin = pm.get_plugin(name)
        hooks = sorted(impl.name for impl in pm.get_hookcallers(plugin) or [])
        click.echo(f"{name}: {', '.join(hooks)}")


roles_cli = AppGroup("roles", help="Роли и права доступа.")


@roles_cli.command("sync")
def sync_roles_command() -> None:
    """Create the roles of the policy and give Admin every permission."""
    names = sync_roles(current_app.appbuilder)
    click.echo(f"Роли синхронизированы: {', '.join(names)}")


def init_app(app: Flask) -> None:
    app.cli.add_command(plugins_cli)
    app.cli.add_command(roles_cli)
