"""The resident's consumption page (/cabinet/consumption/<account id>): kWh per zone and money
charged over the last 24 months as a chart (Chart.js served from app/static/vendor, no CDN)
and a table, downloadable as .xlsx and .csv. An account not bound to the signed-in user is a
404 on every route, the same as a missing one."""
from __future__ import annotations

import io

from flask import abort, request, send_file
from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db, reads_only
from app.services import accounts, audit, consumption
from app.views import formats
from app.views.base import XLSX_MIMETYPE, content_disposition
from app.views.cabinet import entrance

CSV_MIMETYPE = "text/csv; charset=utf-8"


def _kwh_format(data: consumption.Consumption):
    """kWh as whole numbers when every value is whole (the usual case), else with 3 places:
    one precision for the whole table so the columns line up."""
    values = [v for r in data.rows for v in (*r.kwh, r.total_kwh)]
    places = 0 if all(v == v.to_integral_value() for v in values) else 3
    return lambda value: formats.number(value, places)


class ConsumptionView(BaseView):
    route_base = "/cabinet/consumption"
    default_view = "account"

    def _consumption(self, account_id: int) -> consumption.Consumption:
        account = accounts.bound_account(db.session, current_user.id, account_id)
        if account is None:
            abort(404)
        return consumption.monthly(db.session, account, today=formats.local_today())

    def _download(self, data: consumption.Consumption, kind: str, body, mimetype: str):
        audit.record(db.session, f"export.{kind}", actor_id=current_user.id,
                     object_type="account", object_id=data.account.id, ip=request.remote_addr,
                     details={"page": "consumption", "rows": len(data.rows)})
        name = f"consumption_{data.account.number}_{formats.local_today().isoformat()}.{kind}"
        response = send_file(body, mimetype=mimetype, as_attachment=True, download_name=name)
        response.headers["Content-Disposition"] = content_disposition(
            f"Потребление_{data.account.number}_{formats.local_today().isoformat()}.{kind}",
            fallback=name)
        return response

    @expose("/<int:account_id>")
    @entrance("ResidentAuthView.signin")
    @has_access
    @reads_only
    def account(self, account_id: int):
        data = self._consumption(account_id)
        return self.render_template(
            "cabinet/consumption.html", data=data,
            chart=consumption.chart_data(data, formats.month), kwh=_kwh_format(data),
            title=f"Потребление по лицевому счёту {data.account.number}",
        )

    @expose("/<int:account_id>/xlsx")
    @entrance("ResidentAuthView.signin")
    @has_access
    def xlsx(self, account_id: int):
        data = self._consumption(account_id)
        stream = io.BytesIO()
        consumption.write_xlsx(stream, data)
        stream.seek(0)
        return self._download(data, "xlsx", stream, XLSX_MIMETYPE)

    @expose("/<int:account_id>/csv")
    @entrance("ResidentAuthView.signin")
    @has_access
    def csv(self, account_id: int):
        data = self._consumption(account_id)
        return self._download(data, "csv", io.BytesIO(consumption.csv_bytes(data)),
                              CSV_MIMETYPE)

