"""Built-in plugin: write every audit event to the ``lk_portal.audit`` logger as one JSON line,
for shipping to a log collector. Secrets are already masked by the journal."""
import json
import logging

from app.plugins.hookspecs import hookimpl

log = logging.getLogger("lk_portal.audit")


@hookimpl
def audit_event(event):
    log.info(json.dumps(event, ensure_ascii=False, default=str))
