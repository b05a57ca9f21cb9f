"""The webhook Telegram posts updates to."""
from __future__ import annotations

import logging

from flask import abort, current_app, request
from flask_appbuilder import BaseView, expose

from app.extensions import csrf, db
from lk_telegram_bot import SECRET_HEADER, settings
from lk_telegram_bot.dialog import Dialog

log = logging.getLogger("lk_portal.telegram")


class TelegramWebhookView(BaseView):
    """POST /telegram/webhook/<path>: public and exempt from CSRF like every webhook; a wrong
    path is 404 and a wrong X-Telegram-Bot-Api-Secret-Token 403, before anything is read.
    Always 200 once accepted, even when an answer could not be sent: Telegram would otherwise
    post the same update again."""

    route_base = "/telegram"

    def create_blueprint(self, appbuilder, *args, **kwargs):
        blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        csrf.exempt(f"{TelegramWebhookView.webhook.__module__}."
                    f"{TelegramWebhookView.webhook.__name__}")
        return blueprint

    @expose("/webhook/<path>", methods=["POST"])
    def webhook(self, path: str):
        bot = settings()
        if bot is None or not bot.path_matches(path):
            abort(404)
        if not bot.header_matches(request.headers.get(SECRET_HEADER)):
            log.warning("Telegram webhook: wrong secret header from %s", request.remote_addr)
            abort(403)
        update = request.get_json(silent=True)
        if not isinstance(update, dict):
            return "", 200
        try:
            actions = Dialog(db.session, current_app.config).handle(update)
        except Exception:
            db.session.rollback()
            log.exception("Telegram update %s failed", update.get("update_id"))
            return "", 200
        bot.client.perform(actions)
        return "", 200
