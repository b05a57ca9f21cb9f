"""YooKassa's notification endpoint at the address the shop's settings give it."""
from __future__ import annotations

from flask import request
from flask_appbuilder import BaseView, expose

from app.extensions import csrf, db
from app.services import payment_states


class YooKassaNotifyView(BaseView):
    """POST /payments/yookassa/notify: public and exempt from CSRF like every gateway's
    notification URL; the sender is checked by ``parse_notification`` and the status is then
    fetched from YooKassa before anything moves."""

    route_base = "/payments/yookassa"

    def create_blueprint(self, appbuilder, *args, **kwargs):
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        csrf.exempt(f"{YooKassaNotifyView.notify.__module__}."
                    f"{YooKassaNotifyView.notify.__name__}")
        return blueprint

    @expose("/notify", methods=["POST"])
    def notify(self):
        answer = payment_states.handle_notification(db.session, "yookassa", request)
        return answer.text, answer.status, {"Content-Type": "text/plain; charset=utf-8"}
