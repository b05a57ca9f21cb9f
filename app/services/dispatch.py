"""The one way a rule reaches past app.services: queue a background task by its name and
fire a plugin event. Services never import app.tasks, app.jobs or the plugin manager (the
import-linter contract in setup.cfg holds them to it); create_app wires both ends.

Events are fired after the change they announce is committed: call ``fire`` after
``session.commit()``, with plain data (ids, strings), never ORM objects.
"""
from __future__ import annotations

from typing import Any

from flask import current_app


def enqueue(task_name: str, *args: Any) -> None:
    """Hand a task of app.tasks to Celery by name: run here and now in eager mode (the
    embedded default), queued for a worker when CELERY_BROKER_URL is set."""
    current_app.extensions["celery"].tasks[task_name].delay(*args)


def runs_in_process() -> bool:
    """Whether enqueued tasks run at once in this process (no broker configured)."""
    return bool(current_app.extensions["celery"].conf.task_always_eager)


def fire(hook: str, **payload: Any) -> None:
    """Tell every plugin implementing the event hook named ``hook`` (app.plugins.hookspecs); a
    failing plugin is logged by the plugin manager and never reaches the caller."""
    current_app.extensions["fire_event"](hook, **payload)
