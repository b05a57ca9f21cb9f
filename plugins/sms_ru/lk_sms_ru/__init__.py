"""SMS over an SMS.ru-style HTTP API: the ``sms`` one-time-code channel and the ``sms``
notification transport."""
from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request

from flask import current_app

from app.plugins import DeliveryError, hookimpl

log = logging.getLogger(__name__)

#: Gateway status codes whose cause is the number itself: the user can correct it.
NUMBER_PROBLEMS = {202, 207, 209}
#: Per-number or daily limits: the user can only wait.
LIMITS = {206, 230, 231, 232}


class SmsRuChannel:
    name = "sms"

    def __init__(self, api_id: str, base_url: str, sender: str | None, timeout: float):
        self.api_id = api_id
        self.base_url = base_url.rstrip("/")
        self.sender = sender
        self.timeout = timeout

    def message(self, code: str) -> str:
        return f"Код НЭСК: {code}"

    def send(self, destination: str, code: str, purpose: str) -> str:
        """Send the code; return the gateway's sms_id or raise DeliveryError."""
        return self.send_text(destination, self.message(code))

    def send_text(self, destination: str, text: str) -> str:
        to = "".join(ch for ch in destination if ch.isdigit())
        params = {"api_id": self.api_id, "to": to, "msg": text, "json": "1"}
        if self.sender:
            params["from"] = self.sender
        body = urllib.parse.urlencode(params).encode()
        request = urllib.request.Request(f"{self.base_url}/sms/send", data=body, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except (socket.timeout, TimeoutError):
            raise DeliveryError("Сервис SMS не ответил вовремя. Попробуйте ещё раз.") from None
        except urllib.error.URLError as exc:
            if isinstance(getattr(exc, "reason", None), (socket.timeout, TimeoutError)):
                raise DeliveryError("Сервис SMS не ответил вовремя. Попробуйте ещё раз.") from None
            log.error("SMS gateway unreachable: %s", exc)
            raise DeliveryError("Не удалось отправить SMS. Попробуйте ещё раз позже.") from None
        except ValueError:
            log.error("SMS gateway answered with something that is not JSON")
            raise DeliveryError("Не удалось отправить SMS. Попробуйте ещё раз позже.") from None
        return self._sms_id(payload, to)

    def _sms_id(self, payload: dict, to: str) -> str:
        if payload.get("status") != "OK":
            self._fail(int(payload.get("status_code") or 0), payload.get("status_text"))
        result = (payload.get("sms") or {}).get(to) or {}
        if result.get("status") != "OK":
            self._fail(int(result.get("status_code") or 0), result.get("status_text"))
        return str(result.get("sms_id", ""))

    def _fail(self, status_code: int, text: str | None):
        log.error("SMS gateway refused: %s %s", status_code, text or "")
        if status_code in NUMBER_PROBLEMS:
            raise DeliveryError("На этот номер нельзя отправить SMS. Проверьте номер телефона.")
        if status_code in LIMITS:
            raise DeliveryError("Превышен лимит SMS на этот номер. Попробуйте позже.")
        raise DeliveryError("Не удалось отправить SMS. Попробуйте ещё раз позже.")


class SmsRuTransport:
    """Notices by SMS: the text alone (an SMS has no subject)."""

    name = "sms"
    channel = "sms"

    def __init__(self, sender: SmsRuChannel):
        self.sender = sender

    def send(self, notice) -> str:
        return self.sender.send_text(notice.to, notice.text)


def _channel() -> SmsRuChannel | None:
    """The channel of the app being built (its context is current), when it has an API id."""
    config = current_app.config
    if not config.get("SMS_RU_API_ID"):
        return None
    return SmsRuChannel(config["SMS_RU_API_ID"], config.get("SMS_RU_URL") or "https://sms.ru",
                        config.get("SMS_RU_FROM") or None,
                        float(config.get("SMS_RU_TIMEOUT") or 10))


@hookimpl
def register_otp_channels():
    channel = _channel()
    return [channel] if channel else []


@hookimpl
def register_notification_transports():
    channel = _channel()
    return [SmsRuTransport(channel)] if channel else []
