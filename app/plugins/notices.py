"""Built-in plugin: the portal's own notices (app.services.notice_events) on its events, after
the change is committed — «payment received», «act ready», «application status». A plugin of
its own can hear the same events (a CRM, a messenger)."""
from __future__ import annotations

from app.extensions import db
from app.plugins.hookspecs import hookimpl
from app.services import notice_events


@hookimpl
def payment_status_changed(event):
    if event.get("status") != "succeeded":
        return
    paid = [part["payment_id"] for part in event.get("parts", ())
            if part.get("status", "succeeded") == "succeeded"]
    notice_events.payment_received(db.session, paid)


@hookimpl
def act_ready(event):
    notice_events.act_ready(db.session, event["act_id"])


@hookimpl
def application_status_changed(event):
    notice_events.application_status_changed(db.session, event["application_id"])
