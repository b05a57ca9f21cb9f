"""OTP channels: e-mail through a real SMTP server (aiosmtpd), the dev outbox, and the choice
of channels by configuration."""
from __future__ import annotations

import json

import pytest

from app.services.channels import ChannelConfigError, channel_for
from tests.conftest import free_port


@pytest.mark.parametrize("purpose, subject", [
    ("register", "Код для регистрации в личном кабинете"),
    ("recover", "Код для восстановления доступа к личному кабинету"),
    ("change_contact", "Код для подтверждения адреса электронной почты"),
])
def test_email_code_reaches_a_real_smtp_server(make_app, smtp_server, purpose,
                                               subject):
    """A long Russian subject arrives with every space (the header is folded at 78 columns)."""
    controller, inbox = smtp_server
    flask_app = make_app(MAIL_SERVER="127.0.0.1",
                     MAIL_PORT=controller.port, MAIL_DEFAULT_SENDER="noreply@nesk.example")
    with flask_app.app_context():
        channel = channel_for("email")
        assert channel.name == "email"
        channel.send("ivan@example.test", "482913", purpose)
    (recipients, message), = inbox.messages
    assert recipients == ["ivan@example.test"]
    assert message["Subject"] == subject
    assert "Ваш код: 482913" in message.get_body().get_content()


def test_email_channel_reports_a_dead_server(make_app):
    from app.plugins import DeliveryError

    flask_app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    with flask_app.app_context(), pytest.raises(DeliveryError, match="Не удалось отправить"):
        channel_for("email").send("ivan@example.test", "482913", "register")


def test_dev_outbox_by_default(app, tmp_path):
    channel_for("sms").send("+79181234567", "111222", "recover")
    channel_for("email").send("ivan@example.test", "333444", "register")
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "outbox").iterdir())]
    assert [(r["channel"], r["to"], r["text"]) for r in records] == [
        ("dev-sms", "+79181234567", "Код НЭСК: 111222"),
        ("dev-email", "ivan@example.test", "Код НЭСК: 333444"),
    ]


def test_sms_ru_plugin_is_chosen_when_configured(make_app):
    flask_app = make_app(SMS_RU_API_ID="key")
    with flask_app.app_context():
        assert type(channel_for("sms")).__name__ == "SmsRuChannel"


def test_configured_channel_missing_stops_start_up(make_app):
    with pytest.raises(ChannelConfigError, match="'telegram'"):
        make_app(OTP_SMS_CHANNEL="telegram")


def test_dev_outbox_page_only_in_debug_mode(make_app):
    quiet = make_app()
    assert quiet.test_client().get("/dev/outbox").status_code == 404
    debug = make_app(DEBUG=True)
    with debug.app_context():
        channel_for("sms").send("+79181234567", "246810", "register")
    page = debug.test_client().get("/dev/outbox").get_data(as_text=True)
    assert "+79181234567" in page and "Код НЭСК: 246810" in page


def test_production_refuses_the_development_outbox(make_app):
    with pytest.raises(ChannelConfigError, match="dev-email, dev-sms|dev-sms"):
        make_app(PRODUCTION=True)
    real = make_app(PRODUCTION=True, SMS_RU_API_ID="key",
                MAIL_SERVER="127.0.0.1")
    with real.app_context():
        assert {channel_for("sms").name, channel_for("email").name} == {"sms", "email"}
