"""A plugin whose event hook always fails: the journal must log it and carry on."""
from app.plugins import hookimpl


@hookimpl
def audit_event(event):
    raise RuntimeError(f"syslog collector on fire (event {event['id']})")
