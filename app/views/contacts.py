"""The contacts page (/contacts/), for everyone: the round-the-clock contact centre and the
supplier's e-mail from the configuration, and every branch with its address and phone."""
from __future__ import annotations

from flask import current_app
from flask_appbuilder import BaseView, expose

from app.extensions import db
from app.services import feedback, supplier


class ContactsView(BaseView):
    route_base = "/contacts"
    default_view = "index"

    @expose("/")
    def index(self):
        return self.render_template(
            "contacts/index.html", supplier=supplier.requisites(current_app.config),
            branches=feedback.branches(db.session), title="Контакты")
