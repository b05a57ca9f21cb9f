"""Plugins offering a second ``dev-sms`` code channel or a second ``dev-email`` notification
transport: the names the portal chooses by must be unique."""
from app.plugins import hookimpl


class Twin:
    channel = "email"

    def __init__(self, name):
        self.name = name

    def send(self, *args):
        raise AssertionError("a duplicate is never chosen")


class OtpChannelTwin:
    @hookimpl
    def register_otp_channels(self):
        return [Twin("dev-sms")]


class TransportTwin:
    @hookimpl
    def register_notification_transports(self):
        return [Twin("dev-email")]


TWINS = {"register_otp_channels": OtpChannelTwin,
         "register_notification_transports": TransportTwin}
