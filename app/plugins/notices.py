"""Built-in plugin: the «payment received» notice (app.services.notice_events) on the
``payment_status_changed`` event, after the payment is committed."""
from __future__ import annotations

from app.plugins.hookspecs import hookimpl


@hookimpl
def payment_status_changed(event):
    if event.get("status") != "succeeded":
        return
    from app.extensions import db
    from app.services import notice_events

    paid = [part["payment_id"] for part in event.get("parts", ())
            if part.get("status", "succeeded") == "succeeded"]
    notice_events.payment_received(db.session, paid)
