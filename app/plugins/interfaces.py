"""The objects the ``register_*`` hooks of app.plugins.hookspecs return, as typed Protocols:
what a plugin implements and what the portal calls. The data they carry (a Notice, an
ActData, a PaymentRequest...) are the services' own dataclasses.

Services annotate with these under ``TYPE_CHECKING`` only: the import contract keeps
app.services below app.plugins. ``runtime_checkable``: tests/test_plugins.py checks every
offered object against its Protocol.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import Decimal
from typing import IO, Protocol, runtime_checkable

from app.services.acts import ActData
from app.services.notify import Notice
from app.services.payments import (
    GatewayPayment,
    GatewayRefund,
    Notification,
    PaymentRequest,
    Receipt,
)
from app.services.push import PushNotice


@runtime_checkable
class OtpChannel(Protocol):
    """``register_otp_channels``: delivers a one-time code to a phone ("sms") or an e-mail
    address ("email"), raising app.plugins.DeliveryError when it cannot."""

    name: str

    def send(self, destination: str, code: str, purpose: str) -> object: ...


@runtime_checkable
class NotificationTransport(Protocol):
    """``register_notification_transports``: delivers a notice on its ``channel`` ("email",
    "sms", "push" or "messenger" — a chat linked to the portal's bot, app.services.channels
    .MESSENGER); SMS and messengers send the text only."""

    name: str
    channel: str

    def send(self, notice: Notice) -> object: ...


@runtime_checkable
class PushTransport(Protocol):
    """A notification transport of channel "push": ``send`` delivers one notice or raises
    app.services.push.SubscriptionGone (the device is gone) or any other exception (try
    again another time)."""

    name: str
    channel: str

    def send(self, notice: PushNotice) -> None: ...


@runtime_checkable
class BulkConnection(Protocol):
    """One open connection of a bulk mailer: sends one prepared message, raising
    app.services.mailings TemporaryFailure, PermanentFailure or ConnectionLost."""

    def send(self, sender: str, recipient: str, message: bytes) -> None: ...


@runtime_checkable
class BulkMailer(Protocol):
    """``register_bulk_mailers``: ``connect()`` opens one connection (a context manager) that
    sends many prepared messages; MAILING_TRANSPORT picks one by name."""

    name: str
    development: bool

    def connect(self) -> AbstractContextManager[BulkConnection]: ...


@runtime_checkable
class ActExporter(Protocol):
    """``register_act_exporters``: writes a reconciliation act into a binary stream, one
    object per format ("xlsx", "pdf")."""

    format: str
    mimetype: str
    extension: str

    def export(self, act_data: ActData, stream: IO[bytes]) -> None: ...


@runtime_checkable
class PaymentGateway(Protocol):
    """``register_payment_gateways``: a card gateway shaped after YooKassa's API v3; the portal
    picks one by PAYMENT_GATEWAY and believes only what ``fetch_status`` returns."""

    name: str
    #: A development stand-in (the sandbox): refused when PRODUCTION is on.
    development: bool
    #: The ways to pay it offers (PaymentMethod values), the payer's choice on the pay form.
    methods: tuple[str, ...]

    def create_payment(self, request: PaymentRequest) -> GatewayPayment: ...

    def parse_notification(self, request) -> Notification:
        """Check the sender (signature, source address) and read the body of a Flask
        request; raise ForgedNotification when it is not the gateway's."""

    def fetch_status(self, external_id: str) -> GatewayPayment: ...

    def refund(self, external_id: str, amount: Decimal, idempotence_key: str,
               receipt: Receipt) -> GatewayRefund: ...


@runtime_checkable
class SavedMethodGateway(PaymentGateway, Protocol):
    """A gateway that keeps cards for autopay: ``create_payment`` honours
    ``save_payment_method`` (the answer's ``saved_method``) and ``payment_method_id`` (charged
    at once, no confirmation). Without ``saves_methods`` the cabinet offers no autopay."""

    saves_methods: bool

    def forget_method(self, method_id: str) -> None:
        """The payer removed the saved card: drop the token where the gateway can (YooKassa
        has no such call: the portal only forgets it); later payments by it are refused."""
