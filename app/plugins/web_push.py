"""Built-in plugin: the ``web-push`` notification transport (channel "push"): a notice encrypted
for one device (RFC 8291, aes128gcm) and signed with the portal's VAPID key (RFC 8292), posted
to the device's push service (RFC 8030) through pywebpush. Offered when VAPID_PRIVATE_KEY is
set (generated into instance/ outside production). Also ``flask push vapid-keys``.

A 404 or 410 from the push service means the device is gone (app.services.push deletes it);
any other failure is a DeliveryError. Neither the endpoint nor the keys are ever logged."""
from __future__ import annotations

import logging

import click
import requests
from flask import current_app
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from app.plugins import DeliveryError
from app.plugins.hookspecs import hookimpl
from app.services import vapid
from app.services.push import SubscriptionGone

log = logging.getLogger(__name__)

#: Seconds to wait for a push service.
TIMEOUT = 10
GONE = (404, 410)


class WebPushTransport:
    name = "web-push"
    channel = "push"

    def send(self, notice) -> None:
        """Encrypt and post one notice; the VAPID key is read from the app at work (the plugin
        module is shared by every app of the process)."""

        config = current_app.config
        signer = Vapid(private_key=vapid.private_key(config["VAPID_PRIVATE_KEY"]))
        try:
            webpush({"endpoint": notice.endpoint,
                     "keys": {"p256dh": notice.p256dh, "auth": notice.auth}},
                    data=notice.content.payload(), vapid_private_key=signer,
                    vapid_claims={"sub": vapid.subject(config)}, content_encoding="aes128gcm",
                    ttl=notice.ttl, timeout=TIMEOUT)
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in GONE:
                raise SubscriptionGone(status) from None
            log.warning("push service refused device #%s: %s", notice.subscription_id,
                        status or "no answer")
            raise DeliveryError("Push service refused the notice.") from None
        except requests.RequestException as exc:  # its text holds the endpoint: not logged
            log.warning("push service of device #%s unreachable: %s", notice.subscription_id,
                        type(exc).__name__)
            raise DeliveryError("Push service unreachable.") from None


@hookimpl
def register_notification_transports():
    return [WebPushTransport()] if current_app.config.get("VAPID_PRIVATE_KEY") else []


@hookimpl
def register_commands(cli):
    @cli.group("push", help="Push-уведомления (Web Push).")
    def push_group():
        pass

    @push_group.command("vapid-keys")
    def vapid_keys():
        """Print a new VAPID key pair for VAPID_PRIVATE_KEY and VAPID_PUBLIC_KEY."""
        private, public = vapid.generate()
        click.echo(f"VAPID_PRIVATE_KEY={private}")
        click.echo(f"VAPID_PUBLIC_KEY={public}")
