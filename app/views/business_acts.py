"""The organization's reconciliation acts (/business/acts/): its requests with their status,
the request form (one of its contracts, two dates), and the ready acts as .xlsx or PDF.

An act or contract of another organization is a 404 on every route, the same as a missing
one; bad input shows the page again with the reason."""
from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import AppBuilder, BaseView, expose, has_access
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.extensions import db
from app.models import ActStatus, ReconciliationAct
from app.services import accounts, act_jobs, acts
from app.views.acts import FORMAT_LABELS, act_download
from app.views.bills import read_date, shown_date
from app.views.cabinet import entrance
from app.views.formats import local_today

#: Acts listed on the page, newest first.
ACTS_SHOWN = 50


class BusinessActsView(BaseView):
    route_base = "/business/acts"
    default_view = "list"

    def _page(self, status: int = 200, error: str | None = None, **form):
        organization_id = current_user.organization_id
        contracts = accounts.organization_contracts(db.session, organization_id)
        rows = list(db.session.execute(
            select(ReconciliationAct)
            .where(ReconciliationAct.organization_id == organization_id)
            .options(joinedload(ReconciliationAct.contract))
            .order_by(ReconciliationAct.requested_at.desc(), ReconciliationAct.id.desc())
            .limit(ACTS_SHOWN)).scalars()) if organization_id is not None else []
        today = local_today()
        last_month_end = today.replace(day=1) - dt.timedelta(days=1)
        values = {"contract": str(contracts[0].id) if contracts else "",
                  "date_from": last_month_end.replace(month=1, day=1),
                  "date_to": last_month_end, **form}
        return self.render_template(
            "business/acts.html", acts=rows, contracts=contracts, form=values, error=error,
            statuses=ActStatus.labels,
            jobs=act_jobs.organization_jobs(db.session, organization_id)
            if any(act.status == "ready" for act in rows) else {},
            formats=[(f, FORMAT_LABELS.get(f, f)) for f in acts.formats()],
            organization=current_user.organization, max_years=acts.MAX_YEARS,
            title="Акты сверки взаимных расчётов"), status

    def _act(self, act_id: int) -> ReconciliationAct:
        act = db.session.get(ReconciliationAct, act_id)
        if act is None or current_user.organization_id is None or \
                act.organization_id != current_user.organization_id:
            abort(404)
        return act

    @expose("/")
    @entrance("BusinessAuthView.signin")
    @has_access
    def list(self):
        return self._page()

    @expose("/request", methods=["POST"])
    @entrance("BusinessAuthView.signin")
    @has_access
    def request_act(self):
        form = {key: request.form.get(key, "")[:20] for key in ("contract", "date_from",
                                                                "date_to")}
        try:
            start = read_date(form["date_from"], "начала периода", acts.ActError)
            end = read_date(form["date_to"], "окончания периода", acts.ActError)
            act = acts.request_act(db.session, current_user, form["contract"], start, end,
                                   today=local_today())
        except acts.ActNotFound:
            db.session.rollback()
            abort(404)
        except acts.ActError as error:
            db.session.rollback()
            return self._page(400, str(error), contract=form["contract"],
                              date_from=shown_date(form["date_from"]),
                              date_to=shown_date(form["date_to"]))
        flash(f"Акт сверки по договору № {act.contract.number} за период с "
              f"{act.date_from:%d.%m.%Y} по {act.date_to:%d.%m.%Y} запрошен. Он появится "
              "здесь, когда бухгалтерия его сформирует.", "success")
        return redirect(url_for(".list"))

    @expose("/<int:act_id>.<fmt>")
    @entrance("BusinessAuthView.signin")
    @has_access
    def download(self, act_id: int, fmt: str):
        """A ready act of the organization; requested and rejected ones have no file yet. A
        large one is built in the background: this link then gives the finished file."""
        act = self._act(act_id)
        if act.status != "ready":
            abort(404)
        return act_download(act, fmt, "business", url_for(".list"))


def register(appbuilder: AppBuilder) -> None:
    """Add the organization's acts screens."""
    appbuilder.add_view_no_menu(BusinessActsView)
