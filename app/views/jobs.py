"""Background jobs in the back office: the journal of jobs with a progress figure, and the
finance page that starts a billing run for a month."""
from __future__ import annotations

import datetime as dt
import json

from flask import current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.security.decorators import has_access
from markupsafe import Markup
from sqlalchemy import select

from app import models as m
from app.extensions import db
from app.services import billing, billing_runs
from app.views.base import CAN_READ, DirectoryModelView, current_user_id
from app.views.formats import local_today

#: Branch runs shown on the start page.
RECENT_RUNS = 30


def progress_bar(percent: int) -> Markup:
    return Markup(
        '<div class="progress" style="margin:0;min-width:120px">'
        '<div class="progress-bar" role="progressbar" aria-valuenow="{0}" aria-valuemin="0" '
        'aria-valuemax="100" style="width:{0}%">{0}%</div></div>').format(int(percent))


class JobView(DirectoryModelView):
    """Long work started from the back office, newest first, with its progress."""

    datamodel = SQLAInterface(m.BackgroundJob)
    base_permissions = CAN_READ
    list_title, show_title = "Фоновые задачи", "Фоновая задача"
    add_title = edit_title = "Фоновая задача"
    label_columns = {"title": "Задача", "kind": "Вид", "status": "Состояние",
                     "percent": "Выполнено", "message": "Результат", "created_by": "Запустил",
                     "created_at": "Запущена", "started_at": "Начата",
                     "finished_at": "Завершена", "params": "Параметры", "done": "Шагов",
                     "total": "Всего шагов"}
    list_columns = ["title", "status", "percent", "message", "created_by", "created_at",
                    "finished_at"]
    show_columns = ["title", "kind", "status", "percent", "message", "params", "created_by",
                    "created_at", "started_at", "finished_at"]
    search_columns = ["title", "status", "created_at"]
    order_columns = ["created_at", "finished_at"]
    base_order = ("created_at", "desc")
    choices_columns = {"status": m.JobStatus.labels}
    formatters_columns = {"percent": progress_bar}


class BillingRunView(BaseView):
    """Finance starts the month's billing run: a background job per branch, each with its
    progress; a branch that failed is started again alone."""

    route_base = "/billingrunview"
    default_view = "list"
    list_title = "Расчёт периода"

    @expose("/list/")
    @has_access
    def list(self):
        runs = db.session.execute(
            select(m.BackgroundJob).where(m.BackgroundJob.kind == billing_runs.JOB_KIND)
            .order_by(m.BackgroundJob.created_at.desc()).limit(RECENT_RUNS)).scalars().all()
        last_month = (local_today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        latest = max((json.loads(r.params or "{}").get("period", "") for r in runs),
                     default="")
        state = (billing_runs.period_state(db.session, dt.date.fromisoformat(latest), runs)
                 if latest else None)
        return self.render_template(
            "jobs/billing_run.html", runs=runs, default_period=last_month, state=state,
            branches=billing_runs.branches(db.session),
            window_last_day=current_app.config["READING_WINDOW_LAST_DAY"],
            running=any(r.status in ("queued", "running") for r in runs),
            progress_bar=progress_bar, title=self.list_title)

    @expose("/add/", methods=["POST"])
    @has_access
    def add(self):
        force_reason = request.form.get("force_reason", "").strip()[:500] or None
        try:
            period = billing.parse_period(request.form.get("period", ""))
            jobs = billing_runs.start_jobs(db.session, period, current_app.config,
                                           current_user_id(), force_reason,
                                           request.form.get("branch") or None)
        except billing.BillingError as error:
            flash(str(error), "danger")
        else:
            failed = [job for job in jobs if job.status == "failed"]
            done = sum(job.status == "done" for job in jobs)
            waiting = len(jobs) - done - len(failed)
            branches = len({json.loads(job.params)["branch_id"] for job in jobs})
            parts = [f"филиалов {branches}" + (f" (задач {len(jobs)})"
                                                if len(jobs) != branches else "")]
            parts += [f"готово {done}"] if done else []
            parts += [f"в работе {waiting}"] if waiting else []
            parts += [f"с ошибкой {len(failed)}"] if failed else []
            flash(f"Расчёт за {period:%m.%Y}: {', '.join(parts)}.",
                  "danger" if failed else "success")
        return redirect(url_for(".list"))
