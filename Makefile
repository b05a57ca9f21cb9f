# Two commands: `make run` serves the portal with demo data, `make test` runs every test;
# `make serve` is production: gunicorn (gunicorn.conf.py) with PRODUCTION=1, see README.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app run
PORT ?= 5000
# psycopg 3 (the driver the project installs); `postgresql://` alone would ask for psycopg2.
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# pytest-xdist: one worker per core, each with its own app, database and Redis database;
# an idle worker takes tests queued for the other (worksteal), so long tests do not trail.
PYTEST_WORKERS ?= auto
PYTEST_ARGS ?=
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal
# Bytecode caches on (__pycache__, ignored by git) even where the environment turns them off:
# otherwise every worker and every subprocess compiles the portal again and pytest rewrites
# every test file's asserts again (collection 9.8 s a process instead of 2.8 s).
unexport PYTHONDONTWRITEBYTECODE

# Installable plugins: every plugins/<name>/ with a setup.cfg, each as its own editable install.
PLUGIN_CFGS := $(wildcard plugins/*/setup.cfg)
PLUGIN_INSTALL := $(foreach dir,$(dir $(PLUGIN_CFGS)),-e ./$(dir))

.PHONY: run serve check-production check lock test test-fast bench install install-test browser \
	db seed test-sqlite test-postgres clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# requirements.lock pins every version (constraints): a fresh clone installs what CI tested.
$(VENV)/.installed: setup.cfg pyproject.toml requirements.lock $(PLUGIN_CFGS) | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e . $(PLUGIN_INSTALL)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

# Re-pin requirements.lock after a change in setup.cfg: resolve in a throwaway venv.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[test]' $(PLUGIN_INSTALL)
	{ sed -n '/^#/p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

# Static checks, before the tests: ruff (pyproject.toml), the import contracts (lint-imports:
# layers and no cycles, [importlinter] in setup.cfg), bandit's high-severity findings,
# pip-audit of requirements.lock (.ci/audit_dependencies.py says when it could not reach
# the advisory service).
check: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/bandit -q -r app plugins config.py run.py gunicorn.conf.py -x '*/tests/*' -lll
	$(BIN)/python .ci/audit_dependencies.py

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test browser

# Debian's chromium for the browser tests (Playwright's own browser download does not work here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core </dev/null; \
	  else echo "chromium is missing: install Debian's chromium package to run the browser tests"; fi; }

db: install
	$(FLASK) db upgrade
	$(FLASK) roles sync

seed: db
	$(FLASK) demo seed

run: seed
	@echo "Портал: http://127.0.0.1:$(PORT)"
	@echo "Чат с Telegram-ботом без Telegram (пока не задан TELEGRAM_BOT_TOKEN): http://127.0.0.1:$(PORT)/dev/telegram"
	$(FLASK) run --host 127.0.0.1 --port $(PORT)

# Production: refuse unfit settings first (app/production.py names the variable to set), then
# migrate and sync the roles (safe to repeat on every deploy), then gunicorn takes the process.
# PRODUCTION=0 is not accepted here: `make run` is the development server.
serve: export PRODUCTION = 1
serve: check-production
	$(FLASK) db upgrade
	$(FLASK) roles sync
	exec $(BIN)/gunicorn --config gunicorn.conf.py run:app

check-production: install
	@PRODUCTION=1 $(BIN)/python -m app.production

test: install-test check test-sqlite test-postgres

# A quick loop: one database (SQLite), no static checks; narrow it with PYTEST_ARGS, e.g.
# make test-fast PYTEST_ARGS="tests/test_cabinet.py -k overview"
test-fast: test-sqlite

# Every test, the portal's and the plugins' (setup.cfg's testpaths), on throwaway SQLite files.
test-sqlite: install-test
	@echo "== SQLite: every test, browser tests included =="
	$(PYTEST) $(PYTEST_ARGS)

# The same suite on PostgreSQL, when the server answers: the tests that use the test
# database (tests/conftest.py), browser tests aside.
test-postgres: install-test
	@if $(BIN)/python -c "import psycopg; psycopg.connect('$(subst +psycopg,,$(PG_TEST_URL))', connect_timeout=3).close()" 2>/dev/null; then \
	  echo "== PostgreSQL answers at $(PG_TEST_URL): the database tests, browser ones aside =="; \
	  TEST_DATABASE_URL='$(PG_TEST_URL)' DATABASE_TESTS_ONLY=1 $(PYTEST) -m "not browser" $(PYTEST_ARGS); \
	else echo "== PostgreSQL does not answer at $(PG_TEST_URL): PostgreSQL run skipped =="; fi

# Every benchmark at a moderate size (bench/*.py say how to run them larger): each prints its
# figures and ends with `ratio <name> <value>`. It needs the test extras (aiosmtpd, aiohttp);
# each benchmark makes, and drops, PostgreSQL and Redis databases of its own.
bench: $(VENV)/.installed-test
	$(BIN)/python bench/billing_run.py --accounts 100000 --history-months 24
	$(BIN)/python bench/reconciliation_export.py --rows 10000 100000
	$(BIN)/python bench/mailing.py --messages 2000
	$(BIN)/python bench/load.py --accounts 20000 --seconds 15 --concurrency 8

clean:
	rm -rf $(VENV) instance *.egg-info plugins/*/*.egg-info
