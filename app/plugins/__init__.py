"""The plugin manager: built-in plugins from one tuple, then everything installed under the
``lk_portal`` entry-point group, less the names in PLUGINS_BLOCKED."""
from __future__ import annotations

import importlib
import logging
from typing import Any

import pluggy
from flask import Flask, current_app

from app.plugins import hookspecs
from app.plugins.hookspecs import PROJECT, hookimpl

__all__ = ["hookimpl", "PROJECT", "create_plugin_manager", "init_app", "fire_event",
           "get_plugin_manager", "DeliveryError", "plugin_names"]

log = logging.getLogger(__name__)

#: Modules under app/plugins/ that are the portal's own behaviour, written as plugins.
BUILTIN_PLUGINS = (
    "app.plugins.audit_log",
)


class DeliveryError(Exception):
    """A channel could not deliver a message; the text is safe to show to the user."""


def create_plugin_manager(blocked: list[str] | tuple[str, ...] = ()) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    for module_name in BUILTIN_PLUGINS:
        if module_name in blocked:
            continue
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.load_setuptools_entrypoints(PROJECT)
    pm.check_pending()
    return pm


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    return sorted(pm.get_name(p) for p in pm.get_plugins())


def init_app(app: Flask) -> pluggy.PluginManager:
    pm = create_plugin_manager(app.config.get("PLUGINS_BLOCKED", ()))
    app.extensions["plugins"] = pm
    pm.hook.configure(app=app)
    pm.hook.register_commands(cli=app.cli)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    return current_app.extensions["plugins"]


def fire_event(name: str, **kwargs: Any) -> None:
    """Call an event hook; a failing plugin is logged, never raised into the caller."""
    hook = getattr(get_plugin_manager().hook, name)
    for impl in reversed(hook.get_hookimpls()):
        try:
            impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, name)
