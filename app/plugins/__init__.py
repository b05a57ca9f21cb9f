"""The plugin manager: built-in plugins from one tuple, then everything installed under the
``lk_portal`` entry-point group, less the names in PLUGINS_BLOCKED.

Switches by environment: ``LK_PLUGINS_LOAD=a,b`` loads only those installed plugins (empty:
none), ``LK_PLUGINS_TRACE=1`` prints every hook call and its result to stderr. A blocked or
to-be-loaded name that is not installed, or a plugin name declared by two distributions, stops
the portal at start-up: a misspelt name must not silently leave a plugin on (or off)."""
from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

import pluggy
from flask import Flask, current_app

from app.plugins import hookspecs
from app.plugins.hookspecs import PROJECT, hookimpl

__all__ = ["hookimpl", "PROJECT", "create_plugin_manager", "init_app", "fire_event",
           "get_plugin_manager", "DeliveryError", "PluginConfigError", "plugin_names",
           "installed_plugins"]

log = logging.getLogger(__name__)

#: Environment switches (read at start-up).
LOAD_ENV = "LK_PLUGINS_LOAD"
TRACE_ENV = "LK_PLUGINS_TRACE"

#: Modules under app/plugins/ that are the portal's own behaviour, written as plugins.
BUILTIN_PLUGINS = (
    "app.plugins.act_pdf",
    "app.plugins.act_xlsx",
    "app.plugins.audit_log",
    "app.plugins.dev_outbox",
    "app.plugins.mail_smtp",
    "app.plugins.notices",
    "app.plugins.sandbox_gateway",
    "app.plugins.web_push",
)


class DeliveryError(Exception):
    """A channel could not deliver a message; the text is safe to show to the user."""


class PluginConfigError(RuntimeError):
    """The configured plugin set cannot be built: the portal refuses to start."""


def installed_plugins(group: str = PROJECT) -> dict[str, importlib.metadata.EntryPoint]:
    """The installed plugins by entry-point name; a name declared by two distributions (or
    shadowing a built-in plugin) is an error, since only one of them could ever load."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=group):
        if ep.name in BUILTIN_PLUGINS:
            raise PluginConfigError(f"plugin name {ep.name!r} of {_dist(ep)} is a built-in plugin")
        if ep.name in found:
            raise PluginConfigError(
                f"plugin name {ep.name!r} is registered twice: by {_dist(found[ep.name])} "
                f"({found[ep.name].value}) and by {_dist(ep)} ({ep.value})"
            )
        found[ep.name] = ep
    return found


def _dist(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _names(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return [n.strip() for n in value if n and n.strip()]


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def create_plugin_manager(
    blocked: Iterable[str] = (),
    load: Iterable[str] | None = None,
    trace: bool = False,
) -> pluggy.PluginManager:
    """Register the built-in plugins, then the installed ones (only ``load`` if given), less
    ``blocked``; with ``trace``, every hook call is written to stderr."""
    blocked = _names(blocked) or []
    load = _names(load)
    installed = installed_plugins()
    unknown = sorted(set(blocked) - set(BUILTIN_PLUGINS) - set(installed))
    if unknown:
        raise PluginConfigError(
            f"PLUGINS_BLOCKED names plugins that are not installed: {', '.join(unknown)} "
            f"(known: {', '.join(sorted([*BUILTIN_PLUGINS, *installed]))})"
        )
    if load is not None:
        missing = sorted(set(load) - set(installed))
        if missing:
            raise PluginConfigError(
                f"{LOAD_ENV} names plugins that are not installed: {', '.join(missing)} "
                f"(installed: {', '.join(sorted(installed)) or 'none'})"
            )

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    if trace:
        pm.trace.root.setwriter(lambda line: sys.stderr.write(f"[lk_portal plugins] {line}"))
        pm.enable_tracing()
    for name in blocked:
        pm.set_blocked(name)
    if load is not None:
        for name in set(installed) - set(load):
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
    pm = create_plugin_manager(
        blocked=app.config.get("PLUGINS_BLOCKED", ()),
        load=app.config.get("PLUGINS_LOAD", os.environ.get(LOAD_ENV)),
        trace=_flag(app.config.get("PLUGINS_TRACE", os.environ.get(TRACE_ENV, ""))),
    )
    app.extensions["plugins"] = pm
    app.extensions["fire_event"] = fire_event
    pm.hook.configure(app=app)
    pm.hook.register_commands(cli=app.cli)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    return current_app.extensions["plugins"]


def fire_event(name: str, **kwargs: Any) -> None:
    """Call an event hook; a failing plugin is logged, never raised into the caller.

    Each implementation is called on its own (through pluggy, so tracing sees it): one
    plugin's failure does not keep the event from the others."""
    pm = get_plugin_manager()
    impls = getattr(pm.hook, name).get_hookimpls()
    plugins = [impl.plugin for impl in impls]
    for impl in reversed(impls):
        one = pm.subset_hook_caller(name, [p for p in plugins if p is not impl.plugin])
        try:
            one(**kwargs)
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, name)
