"""The organization's cabinet (/business/). This first screen lists the organization's
contracts and points of supply; bills, payments and acts build on it."""
from __future__ import annotations

from flask_appbuilder import BaseView, expose, has_access
from flask_login import current_user

from app.extensions import db
from app.services import accounts
from app.views.cabinet import entrance


class BusinessView(BaseView):
    route_base = "/business"
    default_view = "home"

    @expose("/")
    @entrance("BusinessAuthView.signin")
    @has_access
    def home(self):
        contracts = accounts.organization_contracts(db.session, current_user.organization_id)
        return self.render_template("business/home.html", contracts=contracts,
                                    organization=current_user.organization,
                                    title="Договоры организации")
