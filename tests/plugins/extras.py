"""A plugin that uses the start-up hooks: its own setting, a view and a CLI command."""
import click
from flask_appbuilder import BaseView, expose

from app.plugins import hookimpl


class PingView(BaseView):
    route_base = "/test-plugin"

    @expose("/ping")
    def ping(self):
        return "pong " + self.appbuilder.app.config["TEST_PLUGIN_GREETING"]


@hookimpl
def configure(app):
    app.config.setdefault("TEST_PLUGIN_GREETING", "привет")
    app.extensions["test_extras"] = {"configured": True}


@hookimpl
def register_views(appbuilder):
    appbuilder.add_view_no_menu(PingView())


@hookimpl
def register_commands(cli):
    @cli.command("test-plugin-hello")
    @click.argument("name")
    def hello(name):
        """Greet NAME (a command added by a plugin)."""
        click.echo(f"Здравствуйте, {name}!")
