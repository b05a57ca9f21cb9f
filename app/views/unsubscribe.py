"""The one-click unsubscribe link of every mailing letter (/unsubscribe/<token>): public,
the signed token names the user. A person gets a page with one button; a mail client's
RFC 8058 one-click POST (``List-Unsubscribe=One-Click``) needs no page and no CSRF token."""
from __future__ import annotations

from flask import abort, current_app, request
from flask_appbuilder import BaseView, expose

from app.extensions import csrf, db
from app.services import mailing_unsubscribe


class UnsubscribeView(BaseView):
    route_base = "/unsubscribe"
    default_view = "confirm"

    def create_blueprint(self, appbuilder, *args, **kwargs):
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        csrf.exempt(f"{UnsubscribeView.confirm.__module__}.{UnsubscribeView.confirm.__name__}")
        return blueprint

    @expose("/<token>", methods=["GET", "POST"])
    def confirm(self, token: str):
        secret = current_app.config["SECRET_KEY"]
        if mailing_unsubscribe.user_for_token(secret, token) is None:
            abort(404)
        if request.method == "POST":
            if not mailing_unsubscribe.unsubscribe(db.session, secret, token, request.remote_addr):
                abort(404)
            return self.render_template("mailings/unsubscribed.html",
                                        title="Вы отписались от рассылок")
        return self.render_template("mailings/unsubscribe.html", token=token,
                                    title="Отписаться от рассылок")
