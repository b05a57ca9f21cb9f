"""The platform around the domain: configuration from the environment, the app factory's
wiring, the worker entry point, the install of the plugins, and the documentation kept true."""
from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Where every setting read from the environment is documented.
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
#: Environment variables read by the settings: config.py's helpers and direct reads.
ENV_READ = re.compile(r'(?:_env|_flag|instance_secret|os\.environ\.get|getenv|_setting\(app,)\(?\s*'
                      r'"([A-Z][A-Z0-9_]+)"|^[A-Z_]+_ENV = "([A-Z][A-Z0-9_]+)"', re.M)
PLUGIN_DIRS = sorted(p.parent for p in ROOT.glob("plugins/*/setup.cfg"))


def run_python(code: str, tmp_path: Path, **env: str) -> str:
    """Run ``code`` in a fresh interpreter at the project root with only ``env`` configured."""
    clean = {k: v for k, v in os.environ.items()
             if not re.match(r"(DATABASE_URL|REDIS_URL|CELERY_|RATELIMIT_|PLUGINS_|SECRET_KEY|"
                             r"OTP_HASH_KEY|INSTANCE_PATH|LK_PLUGINS_|AUDIT_SYSLOG_)", k)}
    clean.update({"INSTANCE_PATH": str(tmp_path / "instance"),
                  "DATABASE_URL": f"sqlite:///{tmp_path / 'platform.sqlite3'}", **env})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, text=True,
                            capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def settings(tmp_path: Path, *names: str, **env: str) -> dict:
    code = ("import json; from config import Config; c = Config(); "
            f"print(json.dumps({{n: getattr(c, n) for n in {list(names)!r}}}, default=str))")
    return json.loads(run_python(code, tmp_path, **env))


# Configuration


def test_defaults_are_the_embedded_setup(tmp_path):
    got = settings(tmp_path, "RATELIMIT_STORAGE_URI", "CELERY_BROKER_URL", "PLUGINS_BLOCKED",
                   "READING_WINDOW_FIRST_DAY", "READING_WINDOW_LAST_DAY")
    assert got == {"RATELIMIT_STORAGE_URI": "memory://", "CELERY_BROKER_URL": None,
                   "PLUGINS_BLOCKED": [], "READING_WINDOW_FIRST_DAY": 15,
                   "READING_WINDOW_LAST_DAY": 25}


def test_environment_overrides(tmp_path):
    got = settings(tmp_path, "SQLALCHEMY_DATABASE_URI", "RATELIMIT_STORAGE_URI", "REDIS_URL",
                   "PLUGINS_BLOCKED", "READING_WINDOW_FIRST_DAY", "SUPPLIER_INN",
                   DATABASE_URL="postgresql+psycopg://u@db/portal", REDIS_URL="redis://r:6379/2",
                   PLUGINS_BLOCKED="audit_syslog,sms_ru", READING_WINDOW_FIRST_DAY="20",
                   SUPPLIER_INN="2308123456")
    assert got == {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@db/portal",
                   "RATELIMIT_STORAGE_URI": "redis://r:6379/2", "REDIS_URL": "redis://r:6379/2",
                   "PLUGINS_BLOCKED": ["audit_syslog", "sms_ru"],
                   "READING_WINDOW_FIRST_DAY": 20, "SUPPLIER_INN": "2308123456"}
    explicit = settings(tmp_path, "RATELIMIT_STORAGE_URI", REDIS_URL="redis://r:6379/2",
                        RATELIMIT_STORAGE_URI="redis://other:6379/5")
    assert explicit == {"RATELIMIT_STORAGE_URI": "redis://other:6379/5"}


def test_secrets_are_generated_once_and_kept_private(tmp_path):
    first = settings(tmp_path, "SECRET_KEY", "OTP_HASH_KEY")
    second = settings(tmp_path, "SECRET_KEY", "OTP_HASH_KEY")
    assert first == second and first["SECRET_KEY"] != first["OTP_HASH_KEY"]
    assert len(first["SECRET_KEY"]) == 64
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text() == first["SECRET_KEY"]
    assert path.stat().st_mode & 0o777 == 0o600
    given = settings(tmp_path, "SECRET_KEY", SECRET_KEY="from-the-environment")
    assert given == {"SECRET_KEY": "from-the-environment"}


def undocumented_variables(doc: str) -> list[str]:
    """The environment variables the settings read (config.py, app/, the plugins, gunicorn's
    config) that no row of ``doc``'s setting tables names in its first cell."""
    sources = [ROOT / "config.py", ROOT / "gunicorn.conf.py", *ROOT.glob("app/**/*.py"),
               *ROOT.glob("plugins/*/lk_*/**/*.py")]
    names = {n for path in sources for pair in ENV_READ.findall(path.read_text())
             for n in pair if n}
    names -= {"TEST_DATABASE_URL"}  # the test suite's own, documented in docs/testing.md
    assert {"DATABASE_URL", "SECRET_KEY", "REDIS_URL", "PLUGINS_BLOCKED", "LK_PLUGINS_TRACE",
            "AUDIT_SYSLOG_ADDRESS", "WEB_CONCURRENCY"} <= names
    rows = "\n".join(line.split("|")[1] for line in doc.splitlines() if line.startswith("| `"))
    return sorted(n for n in names if f"`{n}`" not in rows)


def test_configuration_doc_documents_every_environment_variable():
    doc = CONFIGURATION_DOC.read_text()
    missing = undocumented_variables(doc)
    assert not missing, f"docs/configuration.md does not document: {', '.join(missing)}"
    assert "`TEST_DATABASE_URL=" in (ROOT / "docs" / "testing.md").read_text()
    without_a_row = "".join(line for line in doc.splitlines(keepends=True)
                            if not line.startswith("| `WEB_TIMEOUT` |"))
    assert undocumented_variables(without_a_row) == ["WEB_TIMEOUT"]


# The app factory and the worker


def test_create_app_wires_the_extensions(app):
    assert {"plugins", "celery", "migrate"} <= set(app.extensions)
    assert app.config["BABEL_DEFAULT_LOCALE"] == "ru"
    assert app.appbuilder.sm.limiter is not None
    assert app.extensions["migrate"].directory == str(ROOT / "migrations")


def test_celery_finds_the_worker_app_with_a_broker(tmp_path):
    code = ("from celery.app.utils import find_app; a = find_app('app.worker'); "
            "from app.worker import flask_app; "
            "print(type(a).__name__, a.main, a.conf.task_always_eager, a.conf.broker_url, "
            "a.conf.result_backend, flask_app.config['SQLALCHEMY_DATABASE_URI'])")
    out = run_python(code, tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:6379/13")
    broker = "redis://127.0.0.1:6379/13"
    assert out.split() == ["Celery", "lk_portal", "False", broker, broker,
                           f"sqlite:///{tmp_path / 'platform.sqlite3'}"]


# Installable plugins and the two commands


@pytest.mark.parametrize("plugin_dir", PLUGIN_DIRS, ids=lambda p: p.name)
def test_each_plugin_is_a_separate_distribution_with_tests(plugin_dir):
    cfg = configparser.ConfigParser()
    cfg.read(plugin_dir / "setup.cfg")
    assert cfg["metadata"]["name"].startswith("lk-")
    entry_points = cfg["options.entry_points"]["lk_portal"].strip().splitlines()
    assert len(entry_points) == 1 and "=" in entry_points[0]
    assert (plugin_dir / "pyproject.toml").exists()
    assert list((plugin_dir / "tests").glob("test_*.py")), "a plugin brings its own tests"


def test_make_installs_every_plugin_editable():
    assert {p.name for p in PLUGIN_DIRS} >= {"audit_syslog"}
    out = subprocess.run(["make", "-n", "-B", "install"], cwd=ROOT, text=True,
                         capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    (install,) = [line for line in out.stdout.splitlines()
                  if "pip install" in line and " -e ." in line]
    for plugin_dir in PLUGIN_DIRS:
        assert f"-e ./plugins/{plugin_dir.name}/" in install, install


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script and re.search(r"^\s*(exec )?make test\b", script, re.M)


# Dependencies: what the code imports is what setup.cfg installs on a fresh machine

LOCAL_MODULES = {"app", "config", "run", "tests", "migrations"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(line: str) -> tuple[str, set[str]]:
    """``name[extra,...]>=1; marker`` -> (normalized name, extras)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", line)
    extras = {_normalize(e) for e in (match.group(2) or "").split(",") if e.strip()}
    return _normalize(match.group(1)), extras


def _requirement_name(line: str) -> str:
    return _requirement(line)[0]


def _with_dependencies(lines: list[str]) -> set[str]:
    """Declared distributions and everything they install (extras only where asked for)."""
    import importlib.metadata

    seen: set[tuple[str, frozenset]] = set()
    todo = [_requirement(line) for line in lines]
    while todo:
        name, extras = todo.pop()
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in requires:
            marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
            if marker is None or _normalize(marker.group(1)) in extras:
                todo.append(_requirement(req))
    return {name for name, _ in seen}


def _imports(paths) -> set[str]:
    import ast

    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("part", ["app", "tests"])
def test_every_import_is_an_installed_requirement(part):
    import importlib.metadata

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    declared = cfg["options"]["install_requires"].strip().splitlines()
    paths = [ROOT / "config.py", ROOT / "run.py", *ROOT.glob("app/**/*.py")]
    if part == "tests":
        declared += cfg["options.extras_require"]["test"].strip().splitlines()
        paths = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("plugins/*/tests/*.py")]
    plugin_modules = {p.name for p in ROOT.glob("plugins/*/lk_*")}
    allowed = _with_dependencies(declared)
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_imports(paths) - set(sys.stdlib_module_names) - LOCAL_MODULES
                         - plugin_modules):
        dists = {_normalize(d) for d in providers.get(module, [module])}
        if not dists & allowed:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in setup.cfg ({part}): {missing}"
