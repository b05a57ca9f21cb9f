"""The portal's hook specifications: the contract between the core and its plugins.

A plugin is a module or object with functions marked ``@hookimpl`` named after these specs.
Built-in plugins live in ``app/plugins/``; installable ones declare an entry point in the
``lk_portal`` group. Event hooks receive plain data (ids, dicts), never ORM objects, and run
after the change is committed; an exception in one is logged and never reaches the caller.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from app.plugins.interfaces import (
        ActExporter,
        BulkMailer,
        NotificationTransport,
        OtpChannel,
        PaymentGateway,
    )

PROJECT = "lk_portal"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def configure(app):
    """Read settings from ``app.config`` and set the plugin up, once per app."""


@hookspec
def register_views(appbuilder):
    """Add the plugin's own views or endpoints (a gateway's notification URL, say)."""


@hookspec
def register_commands(cli):
    """Add the plugin's own ``flask`` CLI commands to the click group ``cli``."""


@hookspec
def register_otp_channels() -> list[OtpChannel]:
    """Return a list of one-time-code channels (app.plugins.interfaces.OtpChannel): ``name``
    ("sms", "email") and ``send(destination, code, purpose)``, raising ``DeliveryError`` when
    they cannot send."""


@hookspec
def register_notification_transports() -> list[NotificationTransport]:
    """Return a list of message transports (app.plugins.interfaces.NotificationTransport):
    ``name``, ``channel`` ("email", "sms", "push" or "messenger") and ``send(notice)`` for an
    ``app.services.notify.Notice`` (to, subject, text, and for e-mail an optional ``html`` part
    and ``attachments``; SMS sends the text only; push sends to a subscription of
    app.services.push)."""


@hookspec
def register_bulk_mailers() -> list[BulkMailer]:
    """Return a list of bulk mailers for mailings (app.plugins.interfaces.BulkMailer): ``name``,
    ``development`` and ``connect()``, a context manager giving one connection whose
    ``send(sender, recipient, message_bytes)`` raises ``app.services.mailings``
    TemporaryFailure (try later), PermanentFailure (bounced) or ConnectionLost;
    MAILING_TRANSPORT picks one by name."""


@hookspec
def audit_event(event):
    """An audit event was journaled: ``event`` is a dict (id, at, action, actor_id,
    object_type, object_id, ip, details) with secrets already masked."""


@hookspec
def register_payment_gateways() -> list[PaymentGateway]:
    """Return a list of payment gateways: objects with ``name`` and the methods of
    ``app.plugins.interfaces.PaymentGateway`` (``create_payment``, ``parse_notification``,
    ``fetch_status``, ``refund``); the portal picks one by PAYMENT_GATEWAY at start-up."""


@hookspec
def register_act_exporters() -> list[ActExporter]:
    """Return a list of reconciliation act exporters (app.plugins.interfaces.ActExporter):
    ``format`` ("xlsx", "pdf"), ``mimetype``, ``extension`` and ``export(act_data, stream)``
    writing an ``app.services.acts.ActData`` into a binary stream; a format offered twice stops
    the start."""


@hookspec
def payment_status_changed(event):
    """A card payment's status changed (after commit): ``event`` is a dict (order_key,
    gateway, external_id, status, amount, user_id, parts: [{payment_id, account_id, amount}])."""


@hookspec
def act_ready(event):
    """Finance marked a reconciliation act ready (after commit): ``event`` is a dict (act_id,
    organization_id, contract_id, requested_by_id, date_from, date_to as ISO dates)."""


@hookspec
def application_status_changed(event):
    """An application (a supply contract, a meter's verification) moved to a new status (after
    commit): ``event`` is a dict (application_id, kind, user_id — None for a guest's —,
    previous, status)."""
