"""The development outbox page (/dev/outbox): the last messages the dev channels wrote, so a
developer can register without a phone. Registered only in debug mode, never in production."""
from __future__ import annotations

import json
from pathlib import Path

from flask import current_app
from flask_appbuilder import BaseView, expose

LATEST = 20


def latest_messages(folder: str, limit: int = LATEST) -> list[dict]:
    path = Path(folder)
    if not path.exists():
        return []
    files = sorted(path.glob("*.json"), reverse=True)[:limit]
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


class DevOutboxView(BaseView):
    route_base = "/dev"
    default_view = "outbox"

    @expose("/outbox")
    def outbox(self):
        messages = latest_messages(current_app.config["DEV_OUTBOX_DIR"])
        return self.render_template("dev/outbox.html", messages=messages,
                                    title="Исходящие сообщения (режим разработки)")


def register(appbuilder) -> None:
    if current_app.debug:
        appbuilder.add_view_no_menu(DevOutboxView)
