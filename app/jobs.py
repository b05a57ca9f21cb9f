"""Background jobs on Celery: in-process (eager) by default, a real worker when
CELERY_BROKER_URL is set (``celery -A app.worker worker``, see app/worker.py).

Tasks run inside a Flask app context: the caller's when there is one (eager mode, tests, the
CLI), else that of the app the worker built."""
from __future__ import annotations

from celery import Celery, Task
from celery.schedules import crontab
from flask import Flask, has_app_context

from app.services.notice_events import SCHEDULED

_state: dict[str, Flask] = {}


class FlaskTask(Task):
    def __call__(self, *args, **kwargs):
        if has_app_context():
            return self.run(*args, **kwargs)
        with _state["app"].app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("lk_portal", task_cls=FlaskTask)


def init_app(app: Flask) -> Celery:
    broker = app.config.get("CELERY_BROKER_URL")
    # Daily event notices (`celery -A app.worker beat`): each run sends only what is due
    # and not yet sent, so a missed or repeated run does no harm.
    notices_hour = int(app.config.get("NOTICES_HOUR", 10))
    beat_schedule = {
        f"notices-{event}": {"task": "lk_portal.send_notices", "args": (event,),
                             "schedule": crontab(hour=notices_hour, minute=5 * n)}
        for n, event in enumerate(SCHEDULED)}
    beat_schedule["prune-act-exports"] = {"task": "lk_portal.prune_act_exports",
                                          "schedule": crontab(hour=3, minute=30)}
    beat_schedule["prune-sessions"] = {"task": "lk_portal.prune_sessions",
                                       "schedule": crontab(hour=3, minute=45)}
    # Autopay (app.services.autopay): a repeated or missed run charges no bill twice.
    beat_schedule["autopay"] = {"task": "lk_portal.run_autopay",
                                "schedule": crontab(hour=int(app.config.get("AUTOPAY_HOUR", 9)),
                                                    minute=15)}
    visibility = int(app.config.get("CELERY_VISIBILITY_TIMEOUT") or 3600)
    celery_app.conf.update(
        beat_schedule=beat_schedule,
        broker_url=broker or "memory://",
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or (broker if broker else None),
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # A task of a worker that died goes back to the queue after this many seconds; a
        # live worker looks for such tasks every few seconds (kombu 5.7 would look only every
        # 100 s: its interval times its throttle), a cheap ZRANGE on a small sorted set.
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": min(10, visibility),
            "unacked_restore_throttle": 1,
        },
        timezone="Europe/Moscow",
    )
    celery_app.set_default()
    _state["app"] = app
    app.extensions["celery"] = celery_app
    return celery_app
