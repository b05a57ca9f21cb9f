"""The plugin mechanism: discovery through entry points, blocking, refusing a bad plugin set at
start-up, tracing, event isolation, the CLI, and a meta-test that every hook is documented and
tested (tests named ``test_hook_<hook name>``)."""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import logging
import re
from pathlib import Path

import pluggy
import pytest

import app.plugins as plugins_module
import lk_audit_syslog
from app.extensions import db
from app.plugins import (
    PluginConfigError,
    create_plugin_manager,
    fire_event,
    interfaces,
    plugin_names,
)
from app.plugins import hookspecs as hook_specs
from app.services import audit
from tests.plugins import failing, twins
from tests.plugins.recorder import Recorder

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = set(plugins_module.BUILTIN_PLUGINS)


def names(flask_app) -> set[str]:
    return set(plugin_names(flask_app.extensions["plugins"]))


def audit_event_plugins(flask_app) -> list[str]:
    return [i.plugin_name for i in flask_app.extensions["plugins"].hook.audit_event.get_hookimpls()]


# Discovery, blocking, refusing to start


def test_installed_plugin_is_discovered_through_its_entry_point(app):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="lk_portal")}
    assert eps["audit_syslog"].value == "lk_audit_syslog"
    assert eps["audit_syslog"].dist.name == "lk-audit-syslog"
    pm = app.extensions["plugins"]
    assert BUILTINS | {"audit_syslog"} <= names(app)
    assert pm.get_plugin("audit_syslog") is lk_audit_syslog
    dists = {pm.get_name(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}
    assert dists["audit_syslog"] == "lk-audit-syslog"
    assert "audit_syslog" in audit_event_plugins(app)


def test_plugins_blocked_blocks_an_installed_and_a_builtin_plugin(make_app):
    flask_app = make_app(PLUGINS_BLOCKED=["audit_syslog", "app.plugins.audit_log"])
    pm = flask_app.extensions["plugins"]
    assert "audit_syslog" not in names(flask_app)
    assert "app.plugins.audit_log" not in names(flask_app)
    assert pm.is_blocked("audit_syslog") and pm.is_blocked("app.plugins.audit_log")
    assert audit_event_plugins(flask_app) == []
    assert "app.plugins.dev_outbox" in names(flask_app)


def test_blocking_a_plugin_that_is_not_installed_refuses_to_start(make_app):
    with pytest.raises(PluginConfigError, match="PLUGINS_BLOCKED .*audit_syslgo"):
        make_app(PLUGINS_BLOCKED=["audit_syslgo"])


def test_load_switch_limits_installed_plugins(make_app, monkeypatch):
    monkeypatch.setenv("LK_PLUGINS_LOAD", "")
    flask_app = make_app()
    assert "audit_syslog" not in names(flask_app)
    assert BUILTINS <= names(flask_app)

    monkeypatch.setenv("LK_PLUGINS_LOAD", "audit_syslog")
    flask_app = make_app()
    assert names(flask_app) - BUILTINS == {"audit_syslog"}

    monkeypatch.setenv("LK_PLUGINS_LOAD", "audit_syslog,sms_kaluga")
    with pytest.raises(PluginConfigError, match="LK_PLUGINS_LOAD .*sms_kaluga"):
        make_app()


def _fake_distribution(folder: Path, dist: str, entry_point: str) -> None:
    info = folder / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lk_portal]\n{entry_point}\n")


def test_a_name_registered_twice_refuses_to_start(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "lk-audit-syslog-fork", "audit_syslog = json")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginConfigError, match="'audit_syslog' is registered twice.*lk-audit-"):
        create_plugin_manager()


def test_an_installed_plugin_shadowing_a_builtin_refuses_to_start(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "lk-shadow", "app.plugins.audit_log = json")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginConfigError, match="built-in"):
        create_plugin_manager()


def test_a_misspelt_hook_refuses_to_start(make_app, monkeypatch):
    monkeypatch.setattr(plugins_module, "BUILTIN_PLUGINS",
                        (*plugins_module.BUILTIN_PLUGINS, "tests.plugins.misspelt"))
    with pytest.raises(pluggy.PluginValidationError, match="audit_evnt"):
        make_app()


# Tracing


def test_tracing_is_switched_on_by_the_environment(make_app, monkeypatch, capsys):
    flask_app = make_app()
    with flask_app.app_context():
        audit.record(db.session, "login.success")
    assert "[lk_portal plugins]" not in capsys.readouterr().err

    monkeypatch.setenv("LK_PLUGINS_TRACE", "1")
    flask_app = make_app()
    err = capsys.readouterr().err
    assert "configure [hook]" in err and "register_views [hook]" in err
    with flask_app.app_context():
        audit.record(db.session, "login.failure")
    err = capsys.readouterr().err
    assert "audit_event [hook]" in err and "login.failure" in err


# The hooks, one test (at least) each: the meta-test below looks for test_hook_<name>


def test_hook_audit_event_failing_plugin_is_logged_and_the_journal_carries_on(
        app, session, caplog):
    pm = app.extensions["plugins"]
    recorder = Recorder()
    pm.register(recorder, name="test-recorder")
    pm.register(failing, name="test-failing")  # called before the recorder (LIFO)
    try:
        with caplog.at_level(logging.ERROR, logger="app.plugins"):
            event = audit.record(session, "login.success", object_type="user", object_id=7,
                                 details={"password": "секрет"})
    finally:
        pm.unregister(name="test-failing")
        pm.unregister(name="test-recorder")
    from app.models import AuditEvent

    assert session.get(AuditEvent, event.id).action == "login.success"
    failures = [r for r in caplog.records if "test-failing failed in audit_event" in r.message]
    assert len(failures) == 1 and "collector on fire" in failures[0].exc_text
    assert [(e["id"], e["action"], e["details"]) for e in recorder.events] == [
        (event.id, "login.success", {"password": "***"})]
    assert "test-failing" not in names(app)


def test_hook_audit_event_not_fired_before_commit(app, session):
    pm = app.extensions["plugins"]
    recorder = Recorder()
    pm.register(recorder, name="test-recorder")
    try:
        audit.record(session, "login.success", commit=False)
        assert recorder.events == []
        fire_event("audit_event", event={"id": 0, "action": "x"})
        assert recorder.events == [{"id": 0, "action": "x"}]
    finally:
        pm.unregister(name="test-recorder")


def test_hook_configure_register_views_register_commands(make_app, monkeypatch):
    monkeypatch.setattr(plugins_module, "BUILTIN_PLUGINS",
                        (*plugins_module.BUILTIN_PLUGINS, "tests.plugins.extras"))
    flask_app = make_app()
    assert flask_app.extensions["test_extras"] == {"configured": True}
    response = flask_app.test_client().get("/test-plugin/ping")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "pong привет"
    result = flask_app.test_cli_runner().invoke(args=["test-plugin-hello", "Иван"])
    assert result.exit_code == 0, result.output
    assert result.output == "Здравствуйте, Иван!\n"


def _a_name_offered_twice_refuses_to_start(app, hook, name, chosen):
    from app.services import channels

    pm = app.extensions["plugins"]
    offered = [obj.name for group in getattr(pm.hook, hook)() for obj in group]
    assert name in offered and len(offered) == len(set(offered))
    pm.register(twins.TWINS[hook](), name="test-twins")
    try:
        with pytest.raises(channels.ChannelConfigError, match=f"'{name}' is registered twice"):
            channels.init_app(app)
    finally:
        pm.unregister(name="test-twins")
    channels.init_app(app)
    assert {obj.name for obj in app.extensions[chosen].values()} <= set(offered)
    assert name in {obj.name for obj in app.extensions[chosen].values()}


def test_hook_register_otp_channels(app):
    _a_name_offered_twice_refuses_to_start(app, "register_otp_channels", "dev-sms",
                                           "otp_channels")


def test_hook_register_notification_transports(app):
    _a_name_offered_twice_refuses_to_start(app, "register_notification_transports", "dev-email",
                                           "notification_transports")


# The CLI


def test_flask_plugins_list(runner):
    result = runner.invoke(args=["plugins", "list"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    assert lines["audit_syslog"] == "audit_event, configure"
    assert lines["app.plugins.audit_log"] == "audit_event"
    assert BUILTINS | {"audit_syslog"} <= set(lines)


# Meta-tests: every hook has a docstring, an entry in docs/plugins.md and a test


def hookspecs() -> dict[str, str | None]:
    from app.plugins import hookspecs as module

    tree = ast.parse(Path(module.__file__).read_text())
    return {node.name: ast.get_docstring(node) for node in tree.body
            if isinstance(node, ast.FunctionDef)
            and any(ast.unparse(d) == "hookspec" for d in node.decorator_list)}


def plugin_guide() -> str:
    """The plugin guide, docs/plugins.md, below its title."""
    text = (ROOT / "docs" / "plugins.md").read_text()
    match = re.match(r"# How to write a plugin\n(.*)", text, re.S)
    assert match, "docs/plugins.md does not begin with '# How to write a plugin'"
    return match.group(1)


def test_hookspecs_are_found():
    specs = hookspecs()
    assert {"configure", "register_views", "register_commands", "audit_event"} <= set(specs)
    assert set(specs) == {name for name in dir(plugins_module.hookspecs)
                          if hasattr(getattr(plugins_module.hookspecs, name), "lk_portal_spec")}


@pytest.mark.parametrize("hook", sorted(hookspecs()))
def test_plugin_hooks_have_docstrings_docs_and_tests(hook):
    assert hookspecs()[hook], f"hook {hook} has no docstring in app/plugins/hookspecs.py"
    assert re.search(rf"^- `{hook}\(", plugin_guide(), re.M), \
        f"hook {hook} has no entry («- `{hook}(...)` — ...») in docs/plugins.md"
    assert any(hook in name for name in hook_tests()), \
        f"hook {hook} has no test_hook_{hook}* test"


@functools.cache
def hook_tests() -> frozenset[str]:
    """The names of the suite's test_hook_* tests, the portal's and the plugins' (read once:
    parsing every test file is most of this meta-test's time)."""
    test_files = [*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/test_*.py")]
    return frozenset(node.name for path in test_files
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.FunctionDef) and node.name.startswith("test_hook_"))


# The interfaces (app.plugins.interfaces)

INTERFACE_OF_HOOK = {
    "register_otp_channels": interfaces.OtpChannel,
    "register_notification_transports": interfaces.NotificationTransport,
    "register_bulk_mailers": interfaces.BulkMailer,
    "register_payment_gateways": interfaces.PaymentGateway,
    "register_act_exporters": interfaces.ActExporter,
}


@pytest.mark.parametrize("hook", sorted(INTERFACE_OF_HOOK))
def test_every_offered_object_keeps_its_hooks_protocol(app, hook):
    """What the installed and built-in plugins offer has every attribute and call of the
    hook's Protocol (push transports also keep PushTransport, gateways that save cards
    SavedMethodGateway), and the hook spec names it."""
    with app.app_context():
        offered = [obj for batch in getattr(app.extensions["plugins"].hook, hook)() or ()
                   for obj in batch or ()]
    assert offered, f"no plugin offers anything to {hook} in the test app"
    protocol = INTERFACE_OF_HOOK[hook]
    for obj in offered:
        assert isinstance(obj, protocol), f"{obj!r} does not keep {protocol.__name__}"
        if getattr(obj, "channel", None) == "push":
            assert isinstance(obj, interfaces.PushTransport)
        if getattr(obj, "saves_methods", False):
            assert isinstance(obj, interfaces.SavedMethodGateway)
    assert getattr(hook_specs, hook).__annotations__["return"] == f"list[{protocol.__name__}]"


def test_an_object_missing_a_call_breaks_the_protocol():
    class NoSend:
        name, channel = "broken", "sms"

    assert not isinstance(NoSend(), interfaces.NotificationTransport)
