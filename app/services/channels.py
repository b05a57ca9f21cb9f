"""Choosing how messages leave the portal. Plugins offer one-time-code channels and
notification transports by name; configuration says which name serves phones ("sms") and
which e-mail ("email"): the real ones when configured, the development outbox otherwise. A
configured name that no plugin offers, or a name offered twice, stops the app at start-up
rather than at a user's first sign-up."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from flask import Flask, current_app

from app.services import offers as offers_by_name

if TYPE_CHECKING:
    from app.plugins.interfaces import BulkMailer, OtpChannel


class ChannelConfigError(RuntimeError):
    pass


def default_names(config, prefix: str) -> dict[str, str]:
    """``{"sms": name, "email": name}`` from ``<prefix>_SMS_CHANNEL``/``_EMAIL_CHANNEL``."""
    return {
        "sms": config.get(f"{prefix}_SMS_CHANNEL")
        or ("sms" if config.get("SMS_RU_API_ID") else "dev-sms"),
        "email": config.get(f"{prefix}_EMAIL_CHANNEL")
        or ("email" if config.get("MAIL_SERVER") else "dev-email"),
    }


def choose(offers: Iterable[list], names: dict[str, str], what: str,
           prefix: str = "") -> dict:
    """Pick the offered object named for each kind (app.services.offers' rule)."""
    offered = offers_by_name.collect(offers, what, ChannelConfigError)
    return {kind: offers_by_name.pick(offered, name, f"{what} for {kind}",
                                      f"{prefix}_{kind.upper()}_CHANNEL" if prefix else kind,
                                      ChannelConfigError)
            for kind, name in names.items()}


DEVELOPMENT_PREFIX = "dev-"


def outbox_refused(config) -> bool:
    """Production refuses the development outbox unless DEV_OUTBOX_ENABLED asks for it."""
    return bool(config.get("PRODUCTION")) and not config.get("DEV_OUTBOX_ENABLED")


def refuse_outbox_in_production(config, chosen: dict, what: str) -> None:
    """In production a code must reach the person, not a file: no dev-* channel then."""
    if not outbox_refused(config):
        return
    outboxes = sorted(obj.name for obj in chosen.values()
                      if obj.name.startswith(DEVELOPMENT_PREFIX))
    if outboxes:
        raise ChannelConfigError(
            f"PRODUCTION is on but the {what} would be the development outbox "
            f"({', '.join(outboxes)}): configure MAIL_SERVER and an SMS gateway "
            "(or DEV_OUTBOX_ENABLED=1 for a staging stand)")


def init_app(app: Flask) -> None:
    hook = app.extensions["plugins"].hook
    for key, hook_call, prefix, what in (
            ("otp_channels", hook.register_otp_channels, "OTP", "OTP channel"),
            ("notification_transports", hook.register_notification_transports, "NOTIFY",
             "notification transport")):
        chosen = choose(hook_call(), default_names(app.config, prefix), what, prefix)
        refuse_outbox_in_production(app.config, chosen, what)
        app.extensions[key] = chosen
    app.extensions["messenger_transports"] = messengers(
        hook.register_notification_transports())
    app.extensions["bulk_mailer"] = choose_mailer(hook.register_bulk_mailers(), app.config)


def choose_mailer(offers, config) -> BulkMailer:
    """The mailer named by MAILING_TRANSPORT (default: "smtp" with MAIL_SERVER, else the
    development outbox); a missing or doubled name, or the outbox in production, stop the
    start."""
    offered = offers_by_name.collect(offers, "bulk mailer", ChannelConfigError)
    name = config.get("MAILING_TRANSPORT") or ("smtp" if config.get("MAIL_SERVER")
                                               else "dev-email")
    offers_by_name.pick(offered, name, "bulk mailer", "MAILING_TRANSPORT", ChannelConfigError)
    if outbox_refused(config) and offered[name].development:
        raise ChannelConfigError("PRODUCTION is on but mailings would go to the development "
                                 "outbox: configure MAIL_SERVER")
    return offered[name]


def bulk_mailer():
    """The mailer that delivers mailings (MAILING_TRANSPORT)."""
    return current_app.extensions["bulk_mailer"]


def channel_for(kind: str) -> OtpChannel:
    """The channel that delivers codes to a phone ("sms") or an e-mail address ("email")."""
    return current_app.extensions["otp_channels"][kind]


#: The ``channel`` of a transport to a chat linked to the portal's bot (app.services
#: .messenger_links); optional, and used alongside e-mail and SMS rather than chosen by a setting.
MESSENGER = "messenger"


def messengers(offers: Iterable[list]) -> dict:
    """The offered transports to linked chats, by name (the messenger: "telegram")."""
    offered = offers_by_name.collect(offers, "notification transport", ChannelConfigError)
    return {name: obj for name, obj in offered.items()
            if getattr(obj, "channel", None) == MESSENGER}


def messenger_transports() -> dict:
    """The bots' transports of the running app, by messenger name (none: no bot configured)."""
    return current_app.extensions.get("messenger_transports") or {}


def transport_for(kind: str):
    """The transport that delivers notices to a phone ("sms") or an e-mail address."""
    return current_app.extensions["notification_transports"][kind]
